#include "plan/data_stream.hpp"

#include <future>

namespace lorakit::detail {
namespace {

// Below this, handing a chunk to another thread costs more than hashing it here.
constexpr std::size_t kOverlapThreshold = std::size_t{256} << 10;

}  // namespace

DataStream::DataStream(OutputSink& sink, SshsHasher* hasher) : sink_(sink), hasher_(hasher) {}

void DataStream::append(std::span<const std::byte> bytes) {
  if (pending_.size() + bytes.size() < kDataChunk) {
    pending_.insert(pending_.end(), bytes.begin(), bytes.end());
    return;
  }
  finish();
  if (bytes.size() >= kDataChunk) {
    write_and_hash(bytes);  // a large tensor goes out as it is, without a copy
  } else {
    pending_.assign(bytes.begin(), bytes.end());
  }
}

void DataStream::finish() {
  if (pending_.empty()) return;
  write_and_hash(pending_);
  pending_.clear();
}

void DataStream::write_and_hash(std::span<const std::byte> bytes) {
  if (hasher_ == nullptr) {
    sink_.write(bytes);
    return;
  }
  if (bytes.size() < kOverlapThreshold) {
    hasher_->update_data(bytes);
    sink_.write(bytes);
    return;
  }
  std::future<void> hashed = std::async(std::launch::async, [&] { hasher_->update_data(bytes); });
  try {
    sink_.write(bytes);
  } catch (...) {
    hashed.wait();  // the helper reads `bytes`: it must be done before the caller may free them
    throw;
  }
  hashed.get();
}

}  // namespace lorakit::detail
