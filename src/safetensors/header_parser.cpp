// parse_header: every rule of FORMATS.md §1 is checked while the JSON is read. nlohmann's DOM parser
// silently keeps the last of duplicate keys, so the header is read with its SAX interface, which also
// lets each misplaced value be rejected with the error code of the rule it breaks.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "safetensors/internal.hpp"

namespace lorakit {
namespace {

using json = nlohmann::json;
using safetensors_detail::checked_nbytes;
using safetensors_detail::checked_numel;

constexpr std::string_view kMetadataKey = "__metadata__";

std::uint64_t read_le64(const std::byte* bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<std::uint64_t>(bytes[i]);
  }
  return value;
}

// Where in the expected schema the next JSON event lands.
enum class Place {
  document,        // the top-level value
  top,             // key or end of the top-level object
  metadata_value,  // the value of "__metadata__"
  metadata,        // key or end inside __metadata__
  metadata_entry,  // a metadata value
  tensor_value,    // the value of a tensor key
  entry,           // key or end inside a tensor entry
  dtype_value,
  shape_value,
  shape_element,
  offsets_value,
  offsets_element,
  finished,
};

enum EntryField : unsigned { kDtype = 1, kShape = 2, kOffsets = 4 };

class HeaderBuilder {
 public:
  HeaderBuilder(std::string_view file, Header& header) : file_(file), header_(header) {}

  // ---- nlohmann SAX interface ----
  bool null() { reject("null"); }
  bool boolean(bool) { reject("a boolean"); }
  bool number_integer(json::number_integer_t) { reject("a negative number"); }
  bool number_float(json::number_float_t, const json::string_t& text) {
    reject("the number " + text + " (not an unsigned 64-bit integer)");
  }
  bool binary(json::binary_t&) { reject("binary data"); }

  bool number_unsigned(json::number_unsigned_t value) {
    if (place_ == Place::shape_element) {
      shape_.push_back(value);
      return true;
    }
    if (place_ == Place::offsets_element) {
      if (offsets_.size() == 2) {
        fail(ErrorCode::invalid_offsets, "data_offsets must hold exactly 2 integers");
      }
      offsets_.push_back(value);
      return true;
    }
    reject("a number");
  }

  bool string(json::string_t& value) {
    if (place_ == Place::metadata_entry) {
      header_.metadata.emplace(std::move(metadata_key_), std::move(value));
      place_ = Place::metadata;
      return true;
    }
    if (place_ == Place::dtype_value) {
      const std::optional<DType> dtype = parse_dtype(value);
      if (!dtype) {
        fail(ErrorCode::unknown_dtype, "unknown dtype \"" + value + "\"");
      }
      dtype_ = *dtype;
      place_ = Place::entry;
      return true;
    }
    reject("a string");
  }

  bool start_object(std::size_t) {
    switch (place_) {
      case Place::document: place_ = Place::top; return true;
      case Place::metadata_value:
        header_.has_metadata = true;
        place_ = Place::metadata;
        return true;
      case Place::tensor_value:
        fields_ = 0;
        shape_.clear();
        offsets_.clear();
        place_ = Place::entry;
        return true;
      default: reject("an object");
    }
  }

  bool key(json::string_t& name) {
    switch (place_) {
      case Place::top: top_key(std::move(name)); return true;
      case Place::metadata:
        if (header_.metadata.contains(name)) {
          fail(ErrorCode::duplicate_key, "duplicate key '" + name + "' in __metadata__");
        }
        metadata_key_ = std::move(name);
        place_ = Place::metadata_entry;
        return true;
      case Place::entry: entry_key(name); return true;
      default: fail(ErrorCode::internal, "unexpected key '" + name + "'");
    }
  }

  bool end_object() {
    switch (place_) {
      case Place::top: place_ = Place::finished; return true;
      case Place::metadata: place_ = Place::top; return true;
      case Place::entry:
        finish_entry();
        place_ = Place::top;
        return true;
      default: fail(ErrorCode::internal, "unexpected end of object");
    }
  }

  bool start_array(std::size_t) {
    if (place_ == Place::shape_value) {
      place_ = Place::shape_element;
      return true;
    }
    if (place_ == Place::offsets_value) {
      place_ = Place::offsets_element;
      return true;
    }
    reject("an array");
  }

  bool end_array() {
    if (place_ == Place::offsets_element && offsets_.size() != 2) {
      fail(ErrorCode::invalid_offsets, "data_offsets must hold exactly 2 integers");
    }
    place_ = Place::entry;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) {
    throw Error(ErrorCode::header_invalid_json, file_, "",
                "header is not valid JSON (at byte " + std::to_string(position) + "): " + error.what());
  }

  std::vector<TensorInfo> take_tensors() { return std::move(tensors_); }

 private:
  [[noreturn]] void fail(ErrorCode code, std::string_view message) const {
    const bool inside_tensor = place_ >= Place::tensor_value && place_ <= Place::offsets_element;
    throw Error(code, file_, inside_tensor ? std::string_view(name_) : std::string_view(), message);
  }

  // A JSON value of kind `what` where the schema does not allow it: the rule it breaks decides the code.
  [[noreturn]] void reject(const std::string& what) const {
    switch (place_) {
      case Place::document: fail(ErrorCode::header_not_object, "header is " + what + ", not a JSON object");
      case Place::metadata_value:
        fail(ErrorCode::metadata_invalid, "__metadata__ is " + what + ", not an object of strings");
      case Place::metadata_entry:
        fail(ErrorCode::metadata_invalid,
             "__metadata__ value of '" + metadata_key_ + "' is " + what + ", not a string");
      case Place::tensor_value: fail(ErrorCode::tensor_entry_invalid, "entry is " + what + ", not an object");
      case Place::dtype_value: fail(ErrorCode::tensor_entry_invalid, "dtype is " + what + ", not a string");
      case Place::shape_value:
      case Place::shape_element:
        fail(ErrorCode::invalid_shape, "shape holds " + what + "; it must be an array of unsigned integers");
      case Place::offsets_value:
      case Place::offsets_element:
        fail(ErrorCode::invalid_offsets,
             "data_offsets holds " + what + "; it must be [begin, end] unsigned integers");
      default: fail(ErrorCode::internal, "unexpected " + what);
    }
  }

  void top_key(std::string&& name) {
    if (!top_keys_.insert(name).second) {
      const bool metadata = name == kMetadataKey;
      throw Error(ErrorCode::duplicate_key, file_, metadata ? "" : name,
                  metadata ? "__metadata__ given twice" : "tensor given twice");
    }
    if (name == kMetadataKey) {
      place_ = Place::metadata_value;
      return;
    }
    name_ = std::move(name);
    place_ = Place::tensor_value;
  }

  void entry_key(std::string_view field) {
    const auto [bit, next] = field == "dtype"          ? std::pair{kDtype, Place::dtype_value}
                             : field == "shape"        ? std::pair{kShape, Place::shape_value}
                             : field == "data_offsets" ? std::pair{kOffsets, Place::offsets_value}
                                                       : std::pair{0u, Place::entry};
    if (bit == 0) {
      fail(ErrorCode::tensor_entry_invalid, "unexpected field '" + std::string(field) + "'");
    }
    if ((fields_ & bit) != 0) {
      fail(ErrorCode::duplicate_key, "duplicate field '" + std::string(field) + "'");
    }
    fields_ |= bit;
    place_ = next;
  }

  void finish_entry() {
    for (const auto& [bit, field] :
         {std::pair{kDtype, "dtype"}, std::pair{kShape, "shape"}, std::pair{kOffsets, "data_offsets"}}) {
      if ((fields_ & bit) == 0) {
        fail(ErrorCode::tensor_entry_invalid, std::string("missing field '") + field + "'");
      }
    }
    const std::uint64_t begin = offsets_[0];
    const std::uint64_t end = offsets_[1];
    if (begin > end) {
      fail(ErrorCode::invalid_offsets,
           "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] end before begin");
    }
    const std::optional<std::uint64_t> numel = checked_numel(shape_);
    if (!numel) {
      fail(ErrorCode::invalid_shape, "element count of the shape overflows 64 bits");
    }
    const std::optional<std::uint64_t> nbytes = checked_nbytes(*numel, dtype_);
    if (!nbytes) {
      fail(ErrorCode::size_mismatch, std::to_string(*numel) + " elements of " +
                                         std::string(dtype_name(dtype_)) +
                                         " are not a whole number of bytes");
    }
    if (end - begin != *nbytes) {
      fail(ErrorCode::size_mismatch,
           "data_offsets span " + std::to_string(end - begin) + " bytes but " + std::to_string(*numel) +
               " elements of " + std::string(dtype_name(dtype_)) + " need " + std::to_string(*nbytes));
    }
    tensors_.push_back(TensorInfo{std::move(name_), dtype_, std::move(shape_), begin, end});
    shape_ = {};
  }

  std::string_view file_;
  Header& header_;
  Place place_ = Place::document;
  std::unordered_set<std::string> top_keys_;
  std::vector<TensorInfo> tensors_;
  std::string metadata_key_;
  // The tensor entry being read.
  std::string name_;
  unsigned fields_ = 0;
  DType dtype_{};
  std::vector<std::uint64_t> shape_;
  std::vector<std::uint64_t> offsets_;
};

void parse_json(std::string_view text, std::string_view file, Header& header) {
  // nlohmann skips a UTF-8 byte order mark; JSON (and the reference reader) does not allow one.
  if (text.starts_with("\xEF\xBB\xBF")) {
    throw Error(ErrorCode::header_invalid_json, file, "", "header starts with a byte order mark");
  }
  // nlohmann's lexer takes a NUL byte for the end of input; JSON allows none anywhere.
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    throw Error(ErrorCode::header_invalid_json, file, "",
                "header holds a NUL byte at " + std::to_string(nul) + ", which JSON does not allow");
  }
  HeaderBuilder builder(file, header);
  json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json, /*strict=*/true);
  header.tensors = builder.take_tensors();
}

// Sorted by begin, the tensors must tile [0, data_size) exactly. Zero-size tensors may share an offset,
// so the sort is stable on (begin, end) and keeps their header order.
void check_tiling(std::vector<TensorInfo>& tensors, std::uint64_t data_size, std::string_view file) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::pair{a.begin, a.end} < std::pair{b.begin, b.end};
  });
  std::uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& tensor : tensors) {
    if (tensor.begin != expected) {
      const std::string relation = tensor.begin > expected ? "leaves a gap after" : "overlaps";
      const std::string neighbour = previous ? "tensor '" + previous->name + "'" : "the start of the data";
      throw Error(ErrorCode::data_not_contiguous, file, tensor.name,
                  "data starts at " + std::to_string(tensor.begin) + " and " + relation + " " + neighbour +
                      " (expected " + std::to_string(expected) + ")");
    }
    expected = tensor.end;
    previous = &tensor;
  }
  if (expected != data_size) {
    throw Error(ErrorCode::data_size_mismatch, file, previous ? std::string_view(previous->name) : "",
                "tensors cover " + std::to_string(expected) + " bytes but the data section holds " +
                    std::to_string(data_size));
  }
}

}  // namespace

namespace safetensors_detail {

std::uint64_t validated_header_length(std::span<const std::byte> first_bytes, std::uint64_t file_size,
                                      std::string_view file) {
  if (file_size < 8) {
    throw Error(ErrorCode::file_too_short, file, "",
                "file holds " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length");
  }
  if (first_bytes.size() < 8) {
    throw Error(ErrorCode::internal, file, "", "fewer than 8 bytes given to the header parser");
  }
  const std::uint64_t header_size = read_le64(first_bytes.data());
  if (header_size > kMaxHeaderSize) {
    throw Error(
        ErrorCode::header_too_large, file, "",
        "header length " + std::to_string(header_size) + " exceeds " + std::to_string(kMaxHeaderSize));
  }
  if (8 + header_size > file_size) {
    throw Error(ErrorCode::header_beyond_eof, file, "",
                "header length " + std::to_string(header_size) + " runs past the end of the " +
                    std::to_string(file_size) + "-byte file");
  }
  return header_size;
}

}  // namespace safetensors_detail

Header parse_header(std::span<const std::byte> bytes, std::uint64_t file_size, std::string_view file) {
  const std::uint64_t header_size = safetensors_detail::validated_header_length(bytes, file_size, file);
  if (bytes.size() < 8 + header_size) {
    throw Error(ErrorCode::internal, file, "", "the header parser was given fewer bytes than the header");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  if (!safetensors_detail::is_valid_utf8(text)) {
    throw Error(ErrorCode::header_invalid_utf8, file, "", "header is not valid UTF-8");
  }
  Header header;
  header.header_size = header_size;
  parse_json(text, file, header);
  check_tiling(header.tensors, file_size - 8 - header_size, file);
  header.build_index();
  return header;
}

}  // namespace lorakit
