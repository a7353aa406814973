// File-level checks of a batch: is an output complete, is a new file fully readable, memory estimates.
#include "batch/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "lorakit/atomic_file.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::batch {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kChunk = std::size_t{4} << 20;
// Measured on the resize engine: peak RSS per thread ≈ 30 bytes per element of the largest factor,
// plus its early-factor and write budgets (lorakit/resize.hpp), each at most the output's size.
constexpr std::uint64_t kBytesPerWorkingElement = 32;

// Elements one thread works on for this tensor: a LoHa factor (".hada_") enters a face-splitting
// product r times its own size (its Hadamard product is a LoRA of inner dimension r1·r2).
std::uint64_t working_elements(const TensorInfo& tensor) {
  const bool loha = tensor.name.find(".hada_") != std::string::npos && tensor.shape.size() == 2;
  return tensor.numel() * (loha ? std::min(tensor.shape[0], tensor.shape[1]) : 1);
}

class InputFile {
 public:
  explicit InputFile(const fs::path& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) {
      throw Error(ErrorCode::io_open, path.string(), "", std::string("cannot open: ") + std::strerror(errno));
    }
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Fills as much of `buffer` as the file has left; returns the byte count (0 at the end).
  std::size_t read(std::span<std::byte> buffer) {
    std::size_t filled = 0;
    while (filled < buffer.size()) {
      const ssize_t count = ::read(fd_, buffer.data() + filled, buffer.size() - filled);
      if (count < 0 && errno == EINTR) {
        continue;
      }
      if (count < 0) {
        throw Error(ErrorCode::io_read, path_.string(), "", std::string("read failed: ") + std::strerror(errno));
      }
      if (count == 0) {
        break;
      }
      filled += static_cast<std::size_t>(count);
    }
    return filled;
  }

 private:
  fs::path path_;
  int fd_;
};

}  // namespace

bool is_complete_safetensors(const fs::path& path) {
  try {
    const Reader reader(path);  // validates the header against the file size: a cut file fails
    return true;
  } catch (const Error&) {
    return false;
  }
}

void check_fully_readable(const fs::path& path) {
  const Reader reader(path);
  std::vector<std::byte> buffer;
  for (const TensorInfo& tensor : reader.header().tensors) {
    buffer.resize(tensor.nbytes());
    reader.read(tensor, buffer);
  }
}

bool same_content(const fs::path& a, const fs::path& b) {
  std::error_code error;
  if (same_file(a, b)) {
    return true;
  }
  if (fs::file_size(a, error) != fs::file_size(b, error) || error) {
    return false;
  }
  InputFile file_a(a);
  InputFile file_b(b);
  std::vector<std::byte> chunk_a(kChunk);
  std::vector<std::byte> chunk_b(kChunk);
  for (;;) {
    const std::size_t count_a = file_a.read(chunk_a);
    const std::size_t count_b = file_b.read(chunk_b);
    if (count_a != count_b || !std::equal(chunk_a.begin(), chunk_a.begin() + static_cast<std::ptrdiff_t>(count_a),
                                          chunk_b.begin())) {
      return false;
    }
    if (count_a == 0) {
      return true;
    }
  }
}

void copy_atomically(const fs::path& from, const fs::path& to, bool overwrite) {
  InputFile input(from);
  AtomicFile output(to, overwrite);
  std::vector<std::byte> chunk(kChunk);
  while (const std::size_t count = input.read(chunk)) {
    output.write(std::span<const std::byte>(chunk.data(), count));
  }
  output.commit();
}

std::uint64_t estimate_peak_memory(const fs::path& input, unsigned threads) {
  std::error_code error;
  const std::uint64_t size = fs::file_size(input, error);
  if (error) {
    return 0;
  }
  std::uint64_t largest = 0;
  try {
    const Reader reader(input);
    for (const TensorInfo& tensor : reader.header().tensors) {
      largest = std::max(largest, working_elements(tensor));
    }
  } catch (const Error&) {
    return size;
  }
  return std::min(size, kResizeEarlyFactorBudget) + std::min(size, kResizeWriteBudget) +
         std::uint64_t{std::max(1U, threads)} * kBytesPerWorkingElement * largest;
}

}  // namespace lorakit::batch
