#pragma once
// Where a resize writes its output: an atomic file (temp, fsync, rename) or a buffer in memory
// (resize_bytes). The writer only appends, patches the header once the hashes are known, and commits.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "lorakit/atomic_file.hpp"

namespace lorakit::detail {

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // The output's final size, known before the first write: lets a buffer allocate once.
  virtual void reserve(std::uint64_t size) { (void)size; }
  virtual void write(std::span<const std::byte> bytes) = 0;
  void write(std::string_view bytes) {
    write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  }
  // Overwrites bytes already written.
  virtual void write_at(std::uint64_t offset, std::string_view bytes) = 0;
  // Makes the output complete; an output destroyed before commit() leaves nothing behind.
  virtual void commit() = 0;
};

class FileSink final : public OutputSink {
 public:
  FileSink(const std::filesystem::path& target, bool overwrite) : file_(target, overwrite) {}
  using OutputSink::write;
  void write(std::span<const std::byte> bytes) override { file_.write(bytes); }
  void write_at(std::uint64_t offset, std::string_view bytes) override { file_.write_at(offset, bytes); }
  void commit() override { file_.commit(); }

 private:
  AtomicFile file_;
};

class MemorySink final : public OutputSink {
 public:
  using OutputSink::write;
  void reserve(std::uint64_t size) override;
  void write(std::span<const std::byte> bytes) override;
  void write_at(std::uint64_t offset, std::string_view bytes) override;
  void commit() override { committed_ = true; }
  // The committed bytes (empty before commit), moved out.
  std::vector<std::byte> take();

 private:
  std::vector<std::byte> bytes_;
  bool committed_ = false;
};

}  // namespace lorakit::detail
