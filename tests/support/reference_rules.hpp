#pragma once
// The reference resizer's sv_fro rank rule (FORMATS.md §4), written again from the spec for tests:
// applied to a dense spectrum, it is the independent check of lorakit's factor-space choice.
#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

namespace lorakit::testsupport {

inline std::size_t reference_sv_fro_rank(const Eigen::VectorXd& s, double p, std::size_t cap) {
  const auto n = static_cast<std::size_t>(s.size());
  if (n == 0 || s(0) <= 1e-6) return 1;
  const double total = s.squaredNorm();
  double partial = 0.0;
  std::size_t j = n;  // "n if none"
  for (std::size_t i = 0; i < n; ++i) {
    partial += s(static_cast<Eigen::Index>(i)) * s(static_cast<Eigen::Index>(i));
    if (partial >= p * p * total) {
      j = i;
      break;
    }
  }
  const std::size_t clamped = std::max<std::size_t>(1, std::min(j + 1, n - 1));
  return std::min(clamped + 1, cap);
}

}  // namespace lorakit::testsupport
