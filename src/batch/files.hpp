#pragma once
// File-level helpers of the batch engine (private to src/batch).
#include <filesystem>

namespace lorakit::batch {

// A quick structural check: the header parses and the tensors tile the data section up to the file's
// size (so a file cut short is not complete). Never throws.
bool is_complete_safetensors(const std::filesystem::path& path);
// Parses `path` and reads every tensor's bytes. Throws Error.
void check_fully_readable(const std::filesystem::path& path);
// Same file, or same bytes.
bool same_content(const std::filesystem::path& a, const std::filesystem::path& b);
// Copies `from` to `to` byte for byte through a temporary file renamed into place.
void copy_atomically(const std::filesystem::path& from, const std::filesystem::path& to, bool overwrite);

}  // namespace lorakit::batch
