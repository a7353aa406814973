#pragma once
// The reference resizer's dynamic rank rules (FORMATS.md §4), written again from the spec for tests:
// applied to a dense spectrum, they are the independent check of lorakit's factor-space choice.
#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

namespace lorakit::testsupport {

// j* = first 0-based j with Σ_{i≤j} vᵢ ≥ target·Σv (n if none); k = clamp(j* + 1) + 1, capped. v is σ
// (sv_cumulative) or σ² (sv_fro); s itself decides the MIN_SV test.
inline std::size_t reference_partial_sum_rank(const Eigen::VectorXd& s, const Eigen::VectorXd& v, double target,
                                              std::size_t cap) {
  const auto n = static_cast<std::size_t>(s.size());
  if (n == 0 || s(0) <= 1e-6) return 1;
  const double total = v.sum();
  double partial = 0.0;
  std::size_t j = n;  // "n if none"
  for (std::size_t i = 0; i < n; ++i) {
    partial += v(static_cast<Eigen::Index>(i));
    if (partial >= target * total) {
      j = i;
      break;
    }
  }
  const std::size_t clamped = std::max<std::size_t>(1, std::min(j + 1, n - 1));
  return std::min(clamped + 1, cap);
}

inline std::size_t reference_sv_fro_rank(const Eigen::VectorXd& s, double p, std::size_t cap) {
  return reference_partial_sum_rank(s, s.cwiseAbs2(), p * p, cap);
}

inline std::size_t reference_sv_cumulative_rank(const Eigen::VectorXd& s, double p, std::size_t cap) {
  return reference_partial_sum_rank(s, s, p, cap);
}

// sv_ratio p: c = #{i : σᵢ > σ₁/p}; k = clamp(c) + 1, capped.
inline std::size_t reference_sv_ratio_rank(const Eigen::VectorXd& s, double p, std::size_t cap) {
  const auto n = static_cast<std::size_t>(s.size());
  if (n == 0 || s(0) <= 1e-6) return 1;
  std::size_t count = 0;
  for (Eigen::Index i = 0; i < s.size(); ++i) count += s(i) > s(0) / p ? 1 : 0;
  const std::size_t clamped = std::max<std::size_t>(1, std::min(count, n - 1));
  return std::min(clamped + 1, cap);
}

}  // namespace lorakit::testsupport
