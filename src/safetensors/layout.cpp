// plan_layout reproduces the reference writer (huggingface safetensors `prepare` + serde_json) byte for
// byte: tensor order, compact JSON, string escapes, and space padding of the JSON to a multiple of 8.
#include <algorithm>
#include <charconv>
#include <string>
#include <unordered_set>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "safetensors/internal.hpp"

namespace lorakit {
namespace {

void require_utf8(std::string_view text, std::string_view what) {
  if (!safetensors_detail::is_valid_utf8(text)) {
    throw Error(ErrorCode::invalid_argument, "", "", std::string(what) + " is not valid UTF-8");
  }
}

void validate_names(const std::vector<TensorSpec>& tensors, const Metadata& metadata) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(tensors.size());
  for (const TensorSpec& tensor : tensors) {
    require_utf8(tensor.name, "tensor name");
    if (tensor.name == "__metadata__") {
      throw Error(ErrorCode::invalid_argument, "", tensor.name, "name is reserved for the metadata");
    }
    if (!seen.insert(tensor.name).second) {
      throw Error(ErrorCode::duplicate_key, "", tensor.name, "tensor name given twice");
    }
  }
  for (const auto& [key, value] : metadata) {
    require_utf8(key, "metadata key");
    require_utf8(value, "metadata value of '" + key + "'");
  }
}

// serde_json's escaping: '"', '\\' and control characters below 0x20 only; everything else raw.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out.push_back(kHexDigits[byte >> 4]);
          out.push_back(kHexDigits[byte & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
  out.append(digits, result.ptr);
}

void append_tensor_entry(std::string& out, const TensorInfo& tensor) {
  append_json_string(out, tensor.name);
  out += ":{\"dtype\":";
  append_json_string(out, dtype_name(tensor.dtype));
  out += ",\"shape\":[";
  for (std::size_t i = 0; i < tensor.shape.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    append_number(out, tensor.shape[i]);
  }
  out += "],\"data_offsets\":[";
  append_number(out, tensor.begin);
  out.push_back(',');
  append_number(out, tensor.end);
  out += "]}";
}

void append_metadata(std::string& out, const Metadata& metadata) {
  out += "\"__metadata__\":{";
  bool first = true;
  for (const auto& [key, value] : metadata) {  // std::map: keys in byte-wise order
    if (!first) {
      out.push_back(',');
    }
    first = false;
    append_json_string(out, key);
    out.push_back(':');
    append_json_string(out, value);
  }
  out.push_back('}');
}

std::string header_json(const std::vector<TensorInfo>& tensors, const Metadata& metadata,
                        bool with_metadata) {
  std::string json = "{";
  if (with_metadata) {
    append_metadata(json, metadata);
  }
  for (const TensorInfo& tensor : tensors) {
    if (json.size() > 1) {
      json.push_back(',');
    }
    append_tensor_entry(json, tensor);
  }
  json.push_back('}');
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

std::string length_prefix(std::uint64_t length) {
  std::string bytes(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  }
  return bytes;
}

}  // namespace

Layout plan_layout(std::vector<TensorSpec> tensors, const Metadata& metadata, bool with_metadata) {
  validate_names(tensors, metadata);
  std::sort(tensors.begin(), tensors.end(), [](const TensorSpec& a, const TensorSpec& b) {
    const int rank_a = dtype_writer_rank(a.dtype);
    const int rank_b = dtype_writer_rank(b.dtype);
    return rank_a != rank_b ? rank_a > rank_b : a.name < b.name;
  });
  Layout layout;
  layout.tensors.reserve(tensors.size());
  for (TensorSpec& spec : tensors) {
    const std::uint64_t size = spec.nbytes();
    TensorInfo info{std::move(spec.name), spec.dtype, std::move(spec.shape), layout.data_size, 0};
    if (__builtin_add_overflow(layout.data_size, size, &info.end)) {
      throw Error(ErrorCode::invalid_argument, "", info.name, "data section size overflows 64 bits");
    }
    layout.data_size = info.end;
    layout.tensors.push_back(std::move(info));
  }
  const std::string json = header_json(layout.tensors, metadata, with_metadata);
  layout.prefix = length_prefix(json.size()) + json;
  return layout;
}

Metadata ss_only(const Metadata& metadata) {
  Metadata filtered;
  for (const auto& [key, value] : metadata) {
    if (key.starts_with("ss_")) {
      filtered.emplace_hint(filtered.end(), key, value);
    }
  }
  return filtered;
}

}  // namespace lorakit
