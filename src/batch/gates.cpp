// Quality gates: when a result is not worth keeping.
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

#include <fmt/core.h>

#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

std::string_view trim(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    return {};
  }
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

struct Number {
  double value = 0.0;
  bool percent = false;
};

// A finite non-negative number, optionally followed by '%'.
Number parse_number(std::string_view text, std::string_view flag) {
  std::string_view digits = trim(text);
  Number number;
  if (digits.ends_with('%')) {
    number.percent = true;
    digits = trim(digits.substr(0, digits.size() - 1));
  }
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number.value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || !std::isfinite(number.value) ||
      number.value < 0.0) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{}: expected a non-negative number or percentage, got '{}'", flag, text));
  }
  return number;
}

std::string percent(double fraction) { return fmt::format("{:.1f}%", fraction * 100.0); }

}  // namespace

std::optional<OnDiscard> parse_on_discard(std::string_view name) {
  if (name == "skip") {
    return OnDiscard::skip;
  }
  if (name == "copy") {
    return OnDiscard::copy;
  }
  return std::nullopt;
}

double parse_retention(std::string_view text) {
  const Number number = parse_number(text, "--min-retention");
  const double fraction = number.percent || number.value > 1.0 ? number.value / 100.0 : number.value;
  if (fraction > 1.0) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--min-retention: '{}' is above 100% (give a fraction like 0.87 or a percentage like 87%)", text));
  }
  return fraction;
}

double parse_saving(std::string_view text) {
  const Number number = parse_number(text, "--min-saving");
  if (number.value > 100.0) {
    throw Error(ErrorCode::invalid_argument, fmt::format("--min-saving: '{}' is above 100%", text));
  }
  return number.value / 100.0;
}

std::optional<std::string> discard_reason(const ResizeReport& plan, const Gates& gates) {
  if (gates.min_retention && std::isfinite(plan.average_fro) && plan.average_fro < *gates.min_retention) {
    return fmt::format("retention {} below the minimum {}", percent(plan.average_fro), percent(*gates.min_retention));
  }
  if (gates.min_saving && plan.input_bytes > 0) {
    const double input = static_cast<double>(plan.input_bytes);
    const double saving = (input - static_cast<double>(plan.output_bytes)) / input;
    if (saving < *gates.min_saving) {
      return fmt::format("saving {} below the minimum {}", percent(saving), percent(*gates.min_saving));
    }
  }
  return std::nullopt;
}

}  // namespace lorakit::batch
