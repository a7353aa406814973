#pragma once
// Rank selection (the reference resizer's rules, FORMATS.md §4) and retention metrics.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lorakit {

enum class RankMethod { fixed, sv_ratio, sv_fro, sv_cumulative, sv_knee };
// Exact, case-sensitive names "fixed", "sv_ratio", "sv_fro", "sv_cumulative", "sv_knee"; nullopt otherwise.
std::optional<RankMethod> parse_rank_method(std::string_view name);
std::string_view rank_method_name(RankMethod method);

// Whether a method takes --param (sv_ratio, sv_fro, sv_cumulative).
bool takes_param(RankMethod method);

// The presets of `resize` and `batch`: high / med / low = sv_fro 0.95 / 0.92 / 0.88.
enum class Preset { high, med, low };
std::optional<Preset> parse_preset(std::string_view name);
std::string_view preset_name(Preset preset);
double preset_sv_fro(Preset preset);
// Applies a preset to the rank method and parameter as given on the command line (method "" = not
// given): the preset means `--method sv_fro --param P`; an explicit --param, or a --method other than
// sv_fro, overrides it. The rank cap is left alone: without --rank each module's own rank caps it.
void apply_preset(Preset preset, std::string& method, std::optional<double>& param);

struct RankRule {
  RankMethod method = RankMethod::fixed;
  double param = 0.0;               // p for the methods that take one (finite, > 0)
  std::optional<std::size_t> cap;   // N: fixed rank, or cap for dynamic; none = module's own rank
  bool minimal = false;             // smallest k that meets the target, without the reference's "+1"
  std::size_t floor = 1;            // --min-rank: no smaller k (the cap still applies)
};

// sigma: the module's nonzero singular values of the unscaled product, descending (may be empty for
// a zero module); the missing min(out, in·k) − ρ values count as zeros. full_dim: n = min(out, in·k) of
// the module. current_rank: the module's inner dim r.
//
// With N = rule.cap or current_rank and clamp(x) = max(1, min(x, n − 1)), the result is:
//   fixed            k = N
//   sv_ratio p       k = clamp(c) + 1,        c = #{i : σᵢ > σ₁/p}
//   sv_cumulative p  k = clamp(j* + 1) + 1,   j* = first 0-based j with Σ_{i≤j}σᵢ ≥ p·Σσ (n if none)
//   sv_fro p         k = clamp(j* + 1) + 1,   j* = first 0-based j with Σ_{i≤j}σᵢ² ≥ p²·Σσ² (n if none)
//   sv_knee          k = #{i : r·σᵢ² ≥ Σσ²}, r = current_rank: the knee of the cumulative energy curve,
//                    its point farthest above the straight line from (0, 0) to (r, 1) — the curve rises
//                    faster than that line exactly while σᵢ² ≥ Σσ²/r (lorakit's rule; the reference has none)
//   minimal: sv_ratio k = max(1, c); sv_cumulative / sv_fro k = j* + 1 (n if none) — no clamp, no "+1";
//   then σ₁ ≤ kMinSingularValue (or no σ at all) ⇒ k = 1; then k = min(max(k, rule.floor), N); and k ≥ 1.
// With N = current_rank the "+1" can ask for r + 1 and is capped to r; k ≥ current_rank (possible above
// it only when rule.cap > current_rank, e.g. fixed N > r or N > n, returned as is) means "unchanged".
// The cumulative criteria are evaluated as "the tail Σ_{i>j} ≤ (1 − p)·Σ" with tails summed from the
// smallest value up: equal to the head form in exact arithmetic, but p = 1 is met exactly at the last
// nonzero σ (never earlier because a tiny tail rounds away, never missed because Σ/Σ rounds below 1).
// Throws Error(invalid_argument) for rule.cap == 0, a dynamic p that is not finite and > 0, or sigma
// that is not finite, non-negative, descending and at most full_dim long.
std::size_t choose_rank(std::span<const double> sigma, std::size_t full_dim, std::size_t current_rank,
                        const RankRule& rule);

struct Retention {  // NaN everywhere for a zero module (as the reference; averages exclude NaN)
  double sum = 1.0;        // Σ_{i<k} σ / Σ σ
  double fro = 1.0;        // √(Σ_{i<k} σ² / Σ σ²)
  double max_ratio = 1.0;  // σ₁ / σ_k
};
// Retention of the first k of `sigma`. A zero module (empty sigma or Σσ = 0) gives NaN for all three,
// whatever k (a rank-0 module is one). k beyond the list counts the missing σ as zeros: sum = fro = 1 and
// max_ratio = +inf (σ_k = 0, as the reference's dense spectrum gives). Throws Error(invalid_argument) for
// k = 0 on a nonzero module.
Retention retention(std::span<const double> sigma, std::size_t k);

inline constexpr double kMinSingularValue = 1e-6;  // reference MIN_SV: below it a module gets rank 1

}  // namespace lorakit
