#pragma once
// Rank selection (the reference resizer's rules, FORMATS.md §4) and retention metrics.
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace lorakit {

enum class RankMethod { fixed, sv_ratio, sv_fro, sv_cumulative };
std::optional<RankMethod> parse_rank_method(std::string_view name);
std::string_view rank_method_name(RankMethod method);

struct RankRule {
  RankMethod method = RankMethod::fixed;
  double param = 0.0;               // p for the dynamic methods
  std::optional<std::size_t> cap;   // N: fixed rank, or cap for dynamic; none = module's own rank
  bool minimal = false;             // smallest k that meets the target, without the reference's "+1"
};

// sigma: the module's nonzero singular values of the unscaled product, descending (may be empty for
// a zero module). full_dim: min(out, in·k) of the module. current_rank: the module's inner dim r.
// Returns k ≥ 1. The result may exceed current_rank; callers treat k ≥ current_rank as "unchanged".
std::size_t choose_rank(std::span<const double> sigma, std::size_t full_dim, std::size_t current_rank,
                        const RankRule& rule);

struct Retention {  // NaN everywhere for a zero module (as the reference; averages exclude NaN)
  double sum = 1.0;        // Σ_{i<k} σ / Σ σ
  double fro = 1.0;        // √(Σ_{i<k} σ² / Σ σ²)
  double max_ratio = 1.0;  // σ₁ / σ_k
};
// Retention of the first k of `sigma` (all of them when k ≥ size).
Retention retention(std::span<const double> sigma, std::size_t k);

inline constexpr double kMinSingularValue = 1e-6;  // reference MIN_SV: below it a module gets rank 1

}  // namespace lorakit
