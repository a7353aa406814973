#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "safetensors/internal.hpp"

namespace lorakit {
namespace {

// Decoding reads the raw bytes in pieces of this size, so only one piece is held twice in memory.
constexpr std::size_t kDecodeChunkBytes = std::size_t{1} << 20;

std::uint64_t regular_file_size(int fd, const std::filesystem::path& path) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    throw Error(ErrorCode::io_open, path.string(), "", std::string("cannot stat: ") + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    throw Error(ErrorCode::io_open, path.string(), "", "not a regular file");
  }
  return static_cast<std::uint64_t>(info.st_size);
}

template <class Value>
std::vector<Value> read_decoded(const Reader& reader, const TensorInfo& info) {
  if (!is_float(info.dtype)) {
    throw Error(ErrorCode::adapter_dtype_unsupported, reader.path().string(), info.name,
                "dtype " + std::string(dtype_name(info.dtype)) + " is not a floating-point type");
  }
  const std::size_t width = dtype_bits(info.dtype) / 8;
  std::vector<Value> values(info.nbytes() / width);
  std::vector<std::byte> raw(std::min<std::uint64_t>(info.nbytes(), kDecodeChunkBytes));
  const std::size_t per_chunk = kDecodeChunkBytes / width;
  for (std::size_t first = 0; first < values.size(); first += per_chunk) {
    const std::size_t count = std::min(per_chunk, values.size() - first);
    const std::span<std::byte> piece(raw.data(), count * width);
    reader.read_at(reader.header().data_start() + info.begin + first * width, piece);
    decode(info.dtype, piece, std::span<Value>(values.data() + first, count));
  }
  return values;
}

}  // namespace

Reader::Reader(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw Error(ErrorCode::io_open, path.string(), "", std::string("cannot open: ") + std::strerror(errno));
  }
  try {
    file_size_ = regular_file_size(fd_, path_);
    read_header();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Reader::Reader(std::span<const std::byte> image, std::string name)
    : path_(std::move(name)), image_(image), file_size_(image.size()) {
  read_header();
}

Reader::~Reader() {
  if (fd_ >= 0) ::close(fd_);
}

void Reader::read_header() {
  std::vector<std::byte> prefix(std::min<std::uint64_t>(file_size_, 8));
  read_at(0, prefix);
  const std::uint64_t header_size = safetensors_detail::validated_header_length(prefix, file_size_, path_.string());
  prefix.resize(8 + header_size);
  read_at(8, std::span<std::byte>(prefix).subspan(8));
  header_ = parse_header(prefix, file_size_, path_.string());
}

void Reader::read_at(std::uint64_t offset, std::span<std::byte> dst) const {
  if (offset > file_size_ || dst.size() > file_size_ - offset) {
    throw Error(ErrorCode::io_read, path_.string(), "",
                "read of " + std::to_string(dst.size()) + " bytes at " + std::to_string(offset) +
                    " runs past the end of the file");
  }
  if (fd_ < 0) {
    std::copy_n(image_.begin() + static_cast<std::ptrdiff_t>(offset), dst.size(), dst.begin());
    return;
  }
  std::size_t done = 0;
  while (done < dst.size()) {
    const ssize_t count =
        ::pread(fd_, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw Error(ErrorCode::io_read, path_.string(), "",
                  std::string("read failed: ") + std::strerror(errno));
    }
    if (count == 0) {
      throw Error(ErrorCode::io_read, path_.string(), "", "file ended early (was it truncated while read?)");
    }
    done += static_cast<std::size_t>(count);
  }
}

void Reader::read(const TensorInfo& info, std::span<std::byte> dst) const {
  if (dst.size() != info.nbytes()) {
    throw Error(ErrorCode::internal, path_.string(), info.name,
                "buffer of " + std::to_string(dst.size()) + " bytes for a tensor of " +
                    std::to_string(info.nbytes()));
  }
  read_at(header_.data_start() + info.begin, dst);
}

std::vector<std::byte> Reader::read(const TensorInfo& info) const {
  std::vector<std::byte> bytes(info.nbytes());
  read(info, bytes);
  return bytes;
}

std::vector<double> Reader::read_doubles(const TensorInfo& info) const {
  return read_decoded<double>(*this, info);
}

std::vector<float> Reader::read_floats(const TensorInfo& info) const {
  return read_decoded<float>(*this, info);
}

}  // namespace lorakit
