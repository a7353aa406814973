#pragma once
// Byte sizes as people write them.
#include <cstdint>
#include <string>
#include <string_view>

namespace lorakit {

std::string format_bytes(std::uint64_t bytes);  // "999 B", "150.2 MB" (decimal units: kB, MB, GB, TB)

// A byte size: "50MB", "1.5GB" (decimal units B, kB, MB, GB, TB), "48MiB" (binary KiB, MiB, GiB, TiB), or a
// plain number of bytes; units in any case. Throws Error(invalid_argument) naming `flag`.
std::uint64_t parse_size(std::string_view text, std::string_view flag);

}  // namespace lorakit
