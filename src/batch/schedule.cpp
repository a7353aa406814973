// How many files run at once, with how many threads each, within which memory.
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <thread>

#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

int unit_power(char unit) {
  switch (std::toupper(static_cast<unsigned char>(unit))) {
    case 'K':
      return 1;
    case 'M':
      return 2;
    case 'G':
      return 3;
    case 'T':
      return 4;
    default:
      return -1;
  }
}

[[noreturn]] void bad_memory(std::string_view text) {
  throw Error(ErrorCode::invalid_argument,
              "--max-memory: expected a size such as 4G, 512M or 1.5GiB, got '" + std::string(text) + "'");
}

}  // namespace

std::uint64_t parse_memory(std::string_view text) {
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || !std::isfinite(value) || value <= 0.0) {
    bad_memory(text);
  }
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int power = 0;
  if (!unit.empty() && unit_power(unit.front()) > 0) {
    power = unit_power(unit.front());
    unit.remove_prefix(1);
    if (!unit.empty() && (unit.front() == 'i' || unit.front() == 'I')) {
      unit.remove_prefix(1);
    }
  }
  if (unit == "B" || unit == "b") {
    unit.remove_prefix(1);
  }
  const double bytes = std::ldexp(value, 10 * power);
  if (!unit.empty() || bytes < 1.0 || bytes >= 0x1p64) {
    bad_memory(text);
  }
  return static_cast<std::uint64_t>(bytes);
}

unsigned available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

unsigned threads_per_file(unsigned requested, unsigned jobs, unsigned cores) {
  if (requested > 0) {
    return requested;
  }
  return std::max(1U, cores / std::max(1U, jobs));
}

bool MemoryBudget::can_start(std::uint64_t estimate) const {
  return running_ == 0 || !limit_ || (in_use_ <= *limit_ && estimate <= *limit_ - in_use_);
}

void MemoryBudget::start(std::uint64_t estimate) {
  in_use_ += estimate;
  ++running_;
}

void MemoryBudget::finish(std::uint64_t estimate) {
  in_use_ -= std::min(in_use_, estimate);
  running_ -= std::min<std::size_t>(running_, 1);
}

}  // namespace lorakit::batch
