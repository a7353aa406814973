// Stable shards: every machine that scans the same inputs computes the same slice, whatever the build.
#include <charconv>
#include <cstdlib>
#include <string>
#include <system_error>

#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::uint64_t environment_number(const Environment& environment, const char* name) {
  const std::optional<std::string> text = environment(name);
  const std::optional<std::uint64_t> value = text ? parse_unsigned(*text) : std::nullopt;
  if (!value) {
    const std::string what = text ? "is not a non-negative integer: '" + *text + "'" : "is not set";
    throw Error(ErrorCode::invalid_argument, std::string("--shard auto: ") + name + " " + what);
  }
  return *value;
}

std::uint64_t optional_number(const Environment& environment, const char* name, std::uint64_t fallback) {
  return environment(name) ? environment_number(environment, name) : fallback;
}

Shard checked(Shard shard, const std::string& origin) {
  if (shard.count == 0 || shard.index >= shard.count) {
    throw Error(ErrorCode::invalid_argument, origin + ": shard " + std::to_string(shard.index) + " of " +
                                                 std::to_string(shard.count) + " does not exist (need 0 <= I < N)");
  }
  return shard;
}

// Slurm numbers array tasks from SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP (e.g. --array=1-8).
Shard slurm_shard(const Environment& environment) {
  const std::uint64_t id = environment_number(environment, "SLURM_ARRAY_TASK_ID");
  const std::uint64_t count = environment_number(environment, "SLURM_ARRAY_TASK_COUNT");
  const std::uint64_t min = optional_number(environment, "SLURM_ARRAY_TASK_MIN", 0);
  const std::uint64_t step = optional_number(environment, "SLURM_ARRAY_TASK_STEP", 1);
  if (id < min || step == 0 || (id - min) % step != 0) {
    throw Error(ErrorCode::invalid_argument, "--shard auto: SLURM_ARRAY_TASK_ID " + std::to_string(id) +
                                                 " is not in the array starting at " + std::to_string(min) +
                                                 " with step " + std::to_string(step));
  }
  return checked(Shard{(id - min) / step, count}, "--shard auto (Slurm)");
}

}  // namespace

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

Shard parse_shard(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::optional<std::uint64_t> index = parse_unsigned(text.substr(0, slash));
  const std::optional<std::uint64_t> count =
      slash == std::string_view::npos ? std::nullopt : parse_unsigned(text.substr(slash + 1));
  if (!index || !count) {
    throw Error(ErrorCode::invalid_argument, "--shard: expected I/N (e.g. 0/4) or auto, got '" + std::string(text) + "'");
  }
  return checked(Shard{*index, *count}, "--shard " + std::string(text));
}

Shard shard_from_environment(const Environment& environment) {
  if (environment("SLURM_ARRAY_TASK_ID")) {
    return slurm_shard(environment);
  }
  if (environment("JOB_COMPLETION_INDEX")) {
    return checked(Shard{environment_number(environment, "JOB_COMPLETION_INDEX"),
                         environment_number(environment, "LORAKIT_SHARD_COUNT")},
                   "--shard auto (Kubernetes)");
  }
  throw Error(ErrorCode::invalid_argument,
              "--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX "
              "(Kubernetes Indexed Job) is set");
}

Environment process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    return value ? std::optional<std::string>(value) : std::nullopt;
  };
}

bool in_shard(std::string_view relative, const Shard& shard) { return fnv1a64(relative) % shard.count == shard.index; }

std::vector<Item> select_shard(std::vector<Item> items, const Shard& shard) {
  std::erase_if(items, [&](const Item& item) { return !in_shard(item.relative, shard); });
  return items;
}

}  // namespace lorakit::batch
