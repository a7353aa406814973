// Byte sizes as people write them.
#include "lorakit/units.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit {

std::string format_bytes(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 5> kUnits = {"B", "kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < kUnits.size()) {
    value /= 1000.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::uint64_t parse_size(std::string_view text, std::string_view flag) {
  static constexpr std::array<std::pair<std::string_view, double>, 10> kUnits{{
      {"b", 1.0}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
      {"kib", 0x1p10}, {"mib", 0x1p20}, {"gib", 0x1p30}, {"tib", 0x1p40}, {"", 1.0},
  }};
  auto fail = [&] {
    return Error(ErrorCode::invalid_argument,
                 fmt::format("{}: expected a size such as 50MB, 1.5GB, 800MiB or 123456 (bytes), got '{}'", flag, text));
  };
  const std::size_t end = text.find_first_not_of("0123456789.");
  const std::string number(text.substr(0, end));
  std::string unit(end == std::string_view::npos ? "" : text.substr(end));
  std::transform(unit.begin(), unit.end(), unit.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  double value = 0.0;
  const auto [rest, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || error != std::errc{} || rest != number.data() + number.size()) throw fail();
  for (const auto& [name, factor] : kUnits) {
    if (name != unit) continue;
    const double bytes = std::floor(value * factor);
    if (!(bytes >= 1.0 && bytes < 0x1p63)) throw fail();
    return static_cast<std::uint64_t>(bytes);
  }
  throw fail();
}

}  // namespace lorakit
