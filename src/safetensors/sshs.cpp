// sshs_model_hash / sshs_legacy_hash as kohya computes them (FORMATS.md §4), streamed: the legacy
// window [1 MiB, 1 MiB + 64 KiB) of the serialization may fall in the prefix, the data, or both.
#include <algorithm>
#include <string>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"

namespace lorakit {
namespace {

constexpr std::uint64_t kLegacyWindowBegin = 0x100000;
constexpr std::uint64_t kLegacyWindowEnd = 0x110000;
constexpr std::size_t kLegacyHashLength = 8;

}  // namespace

struct SshsHasher::State {
  Sha256 model;
  Sha256 legacy;
  std::uint64_t position = 0;  // bytes of the serialization seen so far
  std::uint64_t file_size = 0;

  // Feeds bytes that sit at [position, position + size) of the serialization.
  void advance(std::span<const std::byte> bytes) {
    const std::uint64_t begin = std::max(position, kLegacyWindowBegin);
    const std::uint64_t end = std::min(position + bytes.size(), kLegacyWindowEnd);
    if (begin < end) {
      legacy.update(bytes.subspan(begin - position, end - begin));
    }
    position += bytes.size();
  }
};

SshsHasher::SshsHasher(const Layout& ss_only_layout) : state_(std::make_unique<State>()) {
  state_->file_size = ss_only_layout.file_size();
  state_->advance(std::as_bytes(std::span(ss_only_layout.prefix)));
}

SshsHasher::~SshsHasher() = default;

void SshsHasher::update_data(std::span<const std::byte> chunk) {
  state_->model.update(chunk);
  state_->advance(chunk);
}

SshsHashes SshsHasher::finish() {
  if (state_->position != state_->file_size) {
    throw Error(ErrorCode::internal, "sshs hash: fed " + std::to_string(state_->position) +
                                         " bytes of a serialization of " + std::to_string(state_->file_size));
  }
  SshsHashes hashes;
  hashes.model_hash = state_->model.hex_digest();
  hashes.legacy_hash = state_->legacy.hex_digest().substr(0, kLegacyHashLength);
  return hashes;
}

}  // namespace lorakit
