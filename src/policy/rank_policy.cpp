// The reference resizer's rank rules (FORMATS.md §4) on an exact, factor-space spectrum.
#include "lorakit/rank_policy.hpp"

#include <algorithm>
#include <array>
#include <tuple>
#include <cmath>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit {
namespace {

constexpr std::array<std::pair<RankMethod, std::string_view>, 5> kMethodNames{{
    {RankMethod::fixed, "fixed"},
    {RankMethod::sv_ratio, "sv_ratio"},
    {RankMethod::sv_fro, "sv_fro"},
    {RankMethod::sv_cumulative, "sv_cumulative"},
    {RankMethod::sv_knee, "sv_knee"},
}};

constexpr std::array<std::tuple<Preset, std::string_view, double>, 3> kPresets{{
    {Preset::high, "high", 0.95},
    {Preset::med, "med", 0.92},
    {Preset::low, "low", 0.88},
}};

// The reference's clamp(x) = max(1, min(x, n − 1)), also for n ≤ 1 (where Python's n − 1 ≤ 0 gives 1).
std::size_t reference_clamp(std::size_t x, std::size_t full_dim) {
  const std::size_t upper = full_dim > 0 ? full_dim - 1 : 0;
  return std::max<std::size_t>(1, std::min(x, upper));
}

// c = #{i : σᵢ > σ₁/p}; the missing σ are zeros and never count because σ₁/p ≥ 0.
std::size_t count_above_ratio(std::span<const double> sigma, double p) {
  const double threshold = sigma.front() / p;
  return static_cast<std::size_t>(
      std::count_if(sigma.begin(), sigma.end(), [threshold](double s) { return s > threshold; }));
}

// First 0-based j with Σ_{i≤j} vᵢ ≥ target·Σv, evaluated as tail_j = Σ_{i>j} vᵢ ≤ (1 − target)·Σv with
// tails summed from the smallest value up (see rank_policy.hpp); nullopt when no j meets it.
std::optional<std::size_t> first_reaching(const std::vector<double>& values, double target) {
  std::vector<double> tail(values.size(), 0.0);
  double total = 0.0;
  for (std::size_t j = values.size(); j-- > 0;) {
    tail[j] = total;
    total += values[j];
  }
  const double allowed_tail = (1.0 - target) * total;
  for (std::size_t j = 0; j < values.size(); ++j) {
    if (tail[j] <= allowed_tail) return j;
  }
  return std::nullopt;  // only when target > 1: the missing zeros have tail 0 as well and cannot help
}

std::vector<double> squares(std::span<const double> sigma) {
  std::vector<double> result(sigma.size());
  std::transform(sigma.begin(), sigma.end(), result.begin(), [](double s) { return s * s; });
  return result;
}

// #{i : r·σᵢ² ≥ Σσ²} (see rank_policy.hpp).
std::size_t knee_rank(std::span<const double> sigma, std::size_t current_rank) {
  double energy = 0.0;
  for (double s : sigma) energy += s * s;
  const auto r = static_cast<double>(current_rank);
  return static_cast<std::size_t>(
      std::count_if(sigma.begin(), sigma.end(), [&](double s) { return r * s * s >= energy; }));
}

// The rule's k before the MIN_SV test and the cap; sigma is non-empty with σ₁ > 0.
std::size_t rule_rank(std::span<const double> sigma, std::size_t full_dim, std::size_t current_rank,
                      std::size_t cap, const RankRule& rule) {
  if (rule.method == RankMethod::fixed) return cap;
  if (rule.method == RankMethod::sv_knee) return knee_rank(sigma, current_rank);
  if (rule.method == RankMethod::sv_ratio) {
    const std::size_t count = count_above_ratio(sigma, rule.param);
    return rule.minimal ? std::max<std::size_t>(1, count) : reference_clamp(count, full_dim) + 1;
  }
  const bool fro = rule.method == RankMethod::sv_fro;
  const std::vector<double> values = fro ? squares(sigma) : std::vector<double>(sigma.begin(), sigma.end());
  const double target = fro ? rule.param * rule.param : rule.param;
  const std::optional<std::size_t> reached = first_reaching(values, target);
  const std::size_t j_star = reached.value_or(full_dim);
  if (rule.minimal) return reached ? j_star + 1 : full_dim;
  return reference_clamp(j_star + 1, full_dim) + 1;
}

void validate(std::span<const double> sigma, std::size_t full_dim, const RankRule& rule) {
  if (rule.cap && *rule.cap == 0) throw Error(ErrorCode::invalid_argument, "rank must be at least 1");
  if (takes_param(rule.method) && !(std::isfinite(rule.param) && rule.param > 0.0)) {
    throw Error(ErrorCode::invalid_argument, fmt::format("{} parameter must be a finite number > 0, got {}",
                                                         rank_method_name(rule.method), rule.param));
  }
  if (sigma.size() > full_dim) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} singular values for a module of full dimension {}", sigma.size(), full_dim));
  }
  for (std::size_t i = 0; i < sigma.size(); ++i) {
    const bool ordered = i == 0 || sigma[i] <= sigma[i - 1];
    if (!std::isfinite(sigma[i]) || sigma[i] < 0.0 || !ordered) {
      throw Error(ErrorCode::invalid_argument,
                  "singular values must be finite, non-negative and in descending order");
    }
  }
}

}  // namespace

std::optional<RankMethod> parse_rank_method(std::string_view name) {
  for (const auto& [method, method_name] : kMethodNames) {
    if (method_name == name) return method;
  }
  return std::nullopt;
}

std::string_view rank_method_name(RankMethod method) {
  for (const auto& [candidate, name] : kMethodNames) {
    if (candidate == method) return name;
  }
  return "unknown";
}

bool takes_param(RankMethod method) {
  return method == RankMethod::sv_ratio || method == RankMethod::sv_fro || method == RankMethod::sv_cumulative;
}

std::optional<Preset> parse_preset(std::string_view name) {
  for (const auto& [preset, preset_text, target] : kPresets) {
    if (preset_text == name) return preset;
  }
  return std::nullopt;
}

std::string_view preset_name(Preset preset) {
  for (const auto& [candidate, name, target] : kPresets) {
    if (candidate == preset) return name;
  }
  return "unknown";
}

double preset_sv_fro(Preset preset) {
  for (const auto& [candidate, name, target] : kPresets) {
    if (candidate == preset) return target;
  }
  return 0.0;
}

void apply_preset(Preset preset, std::string& method, std::optional<double>& param) {
  if (!method.empty() && method != "sv_fro") return;
  method = "sv_fro";
  if (!param) param = preset_sv_fro(preset);
}

std::size_t choose_rank(std::span<const double> sigma, std::size_t full_dim, std::size_t current_rank,
                        const RankRule& rule) {
  validate(sigma, full_dim, rule);
  const std::size_t cap = rule.cap.value_or(current_rank);
  const bool zero_module = sigma.empty() || sigma.front() <= kMinSingularValue;
  const std::size_t k = zero_module ? 1 : rule_rank(sigma, full_dim, current_rank, cap, rule);
  return std::max<std::size_t>(1, std::min(std::max(k, rule.floor), cap));
}

}  // namespace lorakit
