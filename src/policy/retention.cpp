// Per-module retention metrics as the reference resizer reports them (FORMATS.md §4).
#include <cmath>
#include <limits>

#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"

namespace lorakit {

Retention retention(std::span<const double> sigma, std::size_t k) {
  double total = 0.0, total_squares = 0.0, kept = 0.0, kept_squares = 0.0;
  for (std::size_t i = 0; i < sigma.size(); ++i) {
    total += sigma[i];
    total_squares += sigma[i] * sigma[i];
    if (i < k) {
      kept = total;
      kept_squares = total_squares;
    }
  }
  if (total == 0.0) {  // 0/0 in the reference
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {nan, nan, nan};
  }
  if (k == 0) throw Error(ErrorCode::invalid_argument, "retention: rank must be at least 1");
  const double sigma_k = k <= sigma.size() ? sigma[k - 1] : 0.0;  // the missing σ are zeros
  Retention result;
  result.sum = kept / total;
  result.fro = std::sqrt(kept_squares) / std::sqrt(total_squares);
  result.max_ratio = sigma_k > 0.0 ? sigma.front() / sigma_k : std::numeric_limits<double>::infinity();
  return result;
}

}  // namespace lorakit
