#pragma once
// Output files appear complete or not at all: written to a temp file in the target folder,
// fsynced, then renamed over the target. An uncommitted file is removed on destruction.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace lorakit {

class AtomicFile {
 public:
  // Refuses (Error::output_exists) when `target` exists and !overwrite.
  AtomicFile(std::filesystem::path target, bool overwrite);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes);
  std::uint64_t written() const { return written_; }
  // Overwrites bytes already written, e.g. a header whose hashes are known only after the data.
  void write_at(std::uint64_t offset, std::string_view bytes);
  // fsync the file, rename it over the target, fsync the folder.
  void commit();
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool overwrite_ = false;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

// True when both paths name the same existing file (same device and inode).
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace lorakit
