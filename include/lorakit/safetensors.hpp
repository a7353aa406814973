#pragma once
// safetensors container: a validating reader (every rule of FORMATS.md §1 checked while parsing) and
// a writer that reproduces the reference serialization byte for byte (order, compact JSON, padding).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/dtype.hpp"

namespace lorakit {

using Metadata = std::map<std::string, std::string>;  // __metadata__ (string -> string)

struct TensorInfo {
  std::string name;
  DType dtype{};
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;  // relative to the data section; end exclusive
  std::uint64_t end = 0;

  std::uint64_t numel() const;  // product of shape (1 for rank 0); validated not to overflow
  std::uint64_t nbytes() const { return end - begin; }
};

struct Header {
  std::vector<TensorInfo> tensors;  // in data-offset order
  Metadata metadata;
  bool has_metadata = false;        // whether __metadata__ was present (possibly empty)
  std::uint64_t header_size = 0;    // N, the JSON length
  std::uint64_t data_start() const { return 8 + header_size; }

  const TensorInfo* find(std::string_view name) const;  // nullptr if absent (O(log n))
  // Internal index for find(): names sorted with their positions in `tensors`. find() compares the
  // names in `tensors` (the positions stay right in a copy); if the index does not match `tensors`
  // (e.g. a hand-built Header), find() falls back to a linear scan. build_index() (re)creates it.
  std::vector<std::pair<std::string_view, std::size_t>> index;
  void build_index();
};

inline constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

// Parses and validates a complete file image or its prefix. `file_size` is the size of the whole
// file; `bytes` must hold at least the first 8 + N bytes. `file` names the file in error messages.
Header parse_header(std::span<const std::byte> bytes, std::uint64_t file_size, std::string_view file);

// Reads a safetensors file with pread: bounded memory, thread-safe reads, input never modified.
// Or a whole file image already in memory (e.g. a trainer's serialized state dict): `image` must
// outlive the Reader, and `name` stands for the file in error messages.
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path);
  Reader(std::span<const std::byte> image, std::string name);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const Header& header() const { return header_; }
  const std::filesystem::path& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }

  // Raw little-endian bytes of one tensor; dst.size() must equal info.nbytes().
  void read(const TensorInfo& info, std::span<std::byte> dst) const;
  std::vector<std::byte> read(const TensorInfo& info) const;
  // Any range of the file (absolute offsets), e.g. for hashing or copying.
  void read_at(std::uint64_t offset, std::span<std::byte> dst) const;
  // Decoded float tensor (F16/BF16/F32/F64 only), row-major.
  std::vector<double> read_doubles(const TensorInfo& info) const;
  std::vector<float> read_floats(const TensorInfo& info) const;

 private:
  void read_header();

  std::filesystem::path path_;
  int fd_ = -1;                        // -1: reading from image_
  std::span<const std::byte> image_;
  std::uint64_t file_size_ = 0;
  Header header_;
};

// ---- Writing -------------------------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  DType dtype{};
  std::vector<std::uint64_t> shape;
  std::uint64_t nbytes() const;  // numel * bits / 8 (checked)
};

// The exact bytes that precede the data section, and where each tensor goes.
struct Layout {
  std::string prefix;               // 8-byte length + JSON header padded with spaces to a multiple of 8
  std::vector<TensorInfo> tensors;  // in data order (reference order), offsets assigned
  std::uint64_t data_size = 0;
  std::uint64_t file_size() const { return prefix.size() + data_size; }
};

// Reference order: dtype_writer_rank descending, then name byte-wise ascending. Header JSON:
// {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} compact, keys of
// __metadata__ sorted, raw UTF-8, only '"', '\\' and control characters escaped (serde_json style).
// `__metadata__` is written when `with_metadata` is true (even if empty). Throws on duplicate names.
Layout plan_layout(std::vector<TensorSpec> tensors, const Metadata& metadata, bool with_metadata);

// sshs hashes as kohya computes them (FORMATS.md §4), from a layout whose metadata is already only
// the ss_* keys, and a function that yields the data section's bytes in order.
struct SshsHashes {
  std::string model_hash;   // sha256 hex of the data section
  std::string legacy_hash;  // first 8 hex of sha256 of file bytes [0x100000, 0x110000)
};
class SshsHasher {
 public:
  explicit SshsHasher(const Layout& ss_only_layout);
  ~SshsHasher();
  SshsHasher(const SshsHasher&) = delete;
  SshsHasher& operator=(const SshsHasher&) = delete;
  void update_data(std::span<const std::byte> chunk);  // data section bytes, in order
  SshsHashes finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Metadata with only keys starting with "ss_" (what kohya hashes).
Metadata ss_only(const Metadata& metadata);

}  // namespace lorakit
