#include "plan/output_sink.hpp"

#include <algorithm>
#include <utility>

#include "lorakit/error.hpp"

namespace lorakit::detail {

void MemorySink::reserve(std::uint64_t size) { bytes_.reserve(size); }

void MemorySink::write(std::span<const std::byte> bytes) { bytes_.insert(bytes_.end(), bytes.begin(), bytes.end()); }

void MemorySink::write_at(std::uint64_t offset, std::string_view bytes) {
  if (offset > bytes_.size() || bytes.size() > bytes_.size() - offset) {
    throw Error(ErrorCode::internal, "write_at outside the written range");
  }
  std::transform(bytes.begin(), bytes.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(offset),
                 [](char c) { return static_cast<std::byte>(c); });
}

std::vector<std::byte> MemorySink::take() {
  if (!committed_) return {};
  committed_ = false;
  return std::exchange(bytes_, {});
}

}  // namespace lorakit::detail
