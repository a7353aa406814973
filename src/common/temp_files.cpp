// Temp file names beside an output, and the removal of those a killed writer left behind.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <system_error>

#include "common/folder_of.hpp"
#include "lorakit/atomic_file.hpp"

namespace lorakit {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kRandomDigits = 12;
constexpr std::string_view kTempEnd = ".tmp";

std::string random_hex(std::size_t digits) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string text(digits, '0');
  for (char& c : text) {
    c = kHexDigits[digit(device)];
  }
  return text;
}

// Without the ".<12 hex>.tmp" end; nothing if `file_name` does not end so.
std::optional<std::string_view> strip_temp_end(std::string_view file_name) {
  const std::size_t end_size = 1 + kRandomDigits + kTempEnd.size();
  if (file_name.size() <= end_size || !file_name.ends_with(kTempEnd)) {
    return std::nullopt;
  }
  const std::size_t dot = file_name.size() - end_size;
  if (file_name[dot] != '.') {
    return std::nullopt;
  }
  const std::string_view digits = file_name.substr(dot + 1, kRandomDigits);
  const bool hex = std::all_of(digits.begin(), digits.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  return hex ? std::optional(file_name.substr(0, dot)) : std::nullopt;
}

// Removes `path` only if no writer holds its lock (and it is still the regular file that was locked).
bool remove_if_unheld(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  struct stat opened {};
  struct stat named {};
  const bool removed = ::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &opened) == 0 &&
                       S_ISREG(opened.st_mode) && ::lstat(path.c_str(), &named) == 0 &&
                       named.st_dev == opened.st_dev && named.st_ino == opened.st_ino &&
                       ::unlink(path.c_str()) == 0;
  ::close(fd);
  return removed;
}

}  // namespace

fs::path random_temp_path(const fs::path& target) {
  return detail::folder_of(target) / ("." + target.filename().string() + "." + random_hex(kRandomDigits) + std::string(kTempEnd));
}

bool is_temp_name_of(std::string_view file_name, std::string_view target_name) {
  const std::optional<std::string_view> inner = strip_temp_end(file_name);
  if (!inner || !inner->starts_with('.')) {
    return false;
  }
  const std::string_view named = inner->substr(1);
  return named == target_name || is_temp_name_of(named, target_name);
}

bool is_any_temp_name(std::string_view file_name) {
  const std::optional<std::string_view> inner = strip_temp_end(file_name);
  return inner && inner->size() > 1 && inner->starts_with('.');
}

std::vector<fs::path> remove_stale_temp_files(const fs::path& folder, const std::vector<std::string>& target_names) {
  std::vector<fs::path> removed;
  std::error_code error;
  for (fs::directory_iterator it(folder, error); !error && it != fs::directory_iterator(); it.increment(error)) {
    const std::string file_name = it->path().filename().string();
    const bool ours = std::any_of(target_names.begin(), target_names.end(),
                                  [&](const std::string& name) { return is_temp_name_of(file_name, name); });
    if (ours && remove_if_unheld(it->path())) {
      removed.push_back(it->path());
    }
  }
  return removed;
}

std::vector<fs::path> remove_stale_temp_files(const fs::path& target) {
  return remove_stale_temp_files(detail::folder_of(target), {target.filename().string()});
}

}  // namespace lorakit
