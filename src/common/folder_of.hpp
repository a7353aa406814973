#pragma once
#include <filesystem>

namespace lorakit::detail {

// The folder a file named by `path` is (or will be) in: "." for a bare file name.
inline std::filesystem::path folder_of(const std::filesystem::path& path) {
  std::filesystem::path folder = path.parent_path();
  return folder.empty() ? std::filesystem::path(".") : folder;
}

}  // namespace lorakit::detail
