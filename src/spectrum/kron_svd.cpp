// Explicit SVDs of Kronecker factors and of their Kronecker product (MATH.md §5).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"
#include "spectrum/lapack.hpp"

namespace lorakit {

ExplicitSvd explicit_svd(const MatrixRM& W) {
  if (!W.allFinite()) throw Error(ErrorCode::numeric_failure, "dense SVD: the factor contains NaN or Inf");
  if (W.size() == 0) return {Eigen::VectorXd(0), MatrixRM(W.rows(), 0), MatrixRM(W.cols(), 0)};
  const detail::ThinSvd svd = detail::thin_svd(W);
  const Eigen::VectorXd& sigma = svd.sigma;
  // Values at or below max(rows, cols)·ε·σ₁ are round-off of a rank-deficient W (LAPACK/NumPy rank rule).
  const double tolerance = static_cast<double>(std::max(W.rows(), W.cols())) *
                           std::numeric_limits<double>::epsilon() * sigma(0);
  Eigen::Index rank = 0;
  while (rank < sigma.size() && sigma(rank) > tolerance) ++rank;
  return {sigma.head(rank), svd.U.leftCols(rank), svd.V.leftCols(rank)};
}

ExplicitSvd explicit_svd(const MatrixRM& B, const MatrixRM& A) {
  const FactoredSvd factored = factored_svd(B, A);
  const Eigen::VectorXd inverse_sqrt = factored.sigma.cwiseSqrt().cwiseInverse();
  ExplicitSvd result;
  result.sigma = factored.sigma;
  result.U = B * (factored.up_transform * inverse_sqrt.asDiagonal());
  result.V = A.transpose() * (factored.down_transform.transpose() * inverse_sqrt.asDiagonal());
  return result;
}

KronSvd kron_svd(ExplicitSvd w1, ExplicitSvd w2) {
  const std::size_t n1 = static_cast<std::size_t>(w1.sigma.size());
  const std::size_t n2 = static_cast<std::size_t>(w2.sigma.size());
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  std::vector<double> products;
  pairs.reserve(n1 * n2);
  products.reserve(n1 * n2);
  for (std::size_t i = 0; i < n1; ++i) {
    for (std::size_t j = 0; j < n2; ++j) {
      pairs.emplace_back(i, j);
      products.push_back(w1.sigma(static_cast<Eigen::Index>(i)) * w2.sigma(static_cast<Eigen::Index>(j)));
    }
  }
  std::vector<std::size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Descending product; equal products keep (i, j) order, which `order` already has.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return products[x] > products[y]; });

  KronSvd result;
  result.sigma.resize(static_cast<Eigen::Index>(order.size()));
  result.pairs.reserve(order.size());
  for (std::size_t t = 0; t < order.size(); ++t) {
    result.sigma(static_cast<Eigen::Index>(t)) = products[order[t]];
    result.pairs.push_back(pairs[order[t]]);
  }
  result.w1 = std::move(w1);
  result.w2 = std::move(w2);
  return result;
}

std::pair<MatrixRM, MatrixRM> kron_truncate(const KronSvd& svd, std::size_t k) {
  const Eigen::Index keep = std::min(static_cast<Eigen::Index>(k), svd.sigma.size());
  const MatrixRM& U1 = svd.w1.U;
  const MatrixRM& U2 = svd.w2.U;
  const MatrixRM& V1 = svd.w1.V;
  const MatrixRM& V2 = svd.w2.V;
  MatrixRM up(U1.rows() * U2.rows(), keep);
  MatrixRM down(keep, V1.rows() * V2.rows());
  for (Eigen::Index t = 0; t < keep; ++t) {
    const auto [i, j] = svd.pairs[static_cast<std::size_t>(t)];
    const auto col1 = static_cast<Eigen::Index>(i);
    const auto col2 = static_cast<Eigen::Index>(j);
    const double root = std::sqrt(svd.sigma(t));
    for (Eigen::Index p = 0; p < U1.rows(); ++p) {  // kron(u1_i, u2_j)[p·b + q] = u1_i[p]·u2_j[q]
      up.col(t).segment(p * U2.rows(), U2.rows()) = (root * U1(p, col1)) * U2.col(col2);
    }
    for (Eigen::Index s = 0; s < V1.rows(); ++s) {
      down.row(t).segment(s * V2.rows(), V2.rows()) = (root * V1(s, col1)) * V2.col(col2).transpose();
    }
  }
  return {std::move(up), std::move(down)};
}

}  // namespace lorakit
