#pragma once
// Output files appear complete or not at all: written to a temp file in the target folder,
// fsynced, then renamed over the target. An uncommitted file is removed on destruction.
//
// Temp files are named ".NAME.<12 hex>.tmp" beside the target NAME. A writer holds an exclusive
// flock on its temp file until the rename, so the temp files of a killed writer (SIGKILL, power loss)
// can be told from those of a live one: remove_stale_temp_files removes only files nobody holds.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  bool lock_temp();

  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  int lock_fd_ = -1;  // a second descriptor holding the flock, so that it outlives fd_'s close until the rename
  bool overwrite_ = false;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

// ".NAME.<12 random hex>.tmp" in the folder of `target` (NAME = its file name).
std::filesystem::path random_temp_path(const std::filesystem::path& target);
// Whether `file_name` is a temp file of an output named `target_name`: ".NAME.<12 hex>.tmp", or a
// temp file of such a temp file ("..NAME.<12 hex>.tmp.<12 hex>.tmp", batch --in-place).
bool is_temp_name_of(std::string_view file_name, std::string_view target_name);
bool is_any_temp_name(std::string_view file_name);  // a temp file of any target
// Removes, from `folder`, the temp files of the targets named `target_names` that no writer holds
// (their writer was killed). Regular files only; never follows symlinks. Returns what was removed.
std::vector<std::filesystem::path> remove_stale_temp_files(const std::filesystem::path& folder,
                                                           const std::vector<std::string>& target_names);
std::vector<std::filesystem::path> remove_stale_temp_files(const std::filesystem::path& target);

// Throws Error::output_exists when `target` exists (a dangling symlink included) and !overwrite: what
// AtomicFile checks, for callers that must refuse before any expensive work.
void refuse_existing_output(const std::filesystem::path& target, bool overwrite);

// True when both paths name the same existing file (same device and inode).
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);
// same_file, or the same path once normalised (also for a file that does not exist yet).
bool same_path(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace lorakit
