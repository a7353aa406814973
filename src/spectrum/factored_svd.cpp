// SVD of a product B·A from its factors (MATH.md §1).
//
// Both routes write each factor as X = Q·diag(s)·Wᵀ with Q orthonormal and never formed (for A the
// factor is Aᵀ): the Gram route takes s = √λ, W = P from the eigen-decomposition of XᵀX; the QR route
// takes the SVD of the triangular R of X = Q_X R. Then B·A = Q_B·(diag(s_B) W_Bᵀ W_A diag(s_A))·Q_Aᵀ and
// the SVD of that small core C = U_c Σ V_cᵀ gives B·A's SVD, with
//   up_transform = W_B diag(1/s_B) U_c √Σ   (B·W_B diag(1/s_B) = Q_B: orthonormal)
//   down_transform = √Σ V_cᵀ diag(1/s_A) W_Aᵀ.
#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"

namespace lorakit {
namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

// The Gram route squares condition numbers. It is accepted only when (1) its transforms stay orthonormal:
// Q = X·P·Λ^{-½} is orthonormal to ~ε·κ(X)², required ≤ 1e-8 (κ ≲ 6700, far above the κ ≈ 20–100 of
// trained-like factors); and (2) its singular-value error bound is ≤ 1e-8·σ₁, two orders under the product
// requirement (1e-6) because the bound is a typical-case one. Otherwise the QR route (≈ 4× slower) is used.
// In particular the Gram route never drops eigen-directions: an eigenvalue at the Gram's round-off level
// (λ ≲ R·ε·λ_max, i.e. s ≲ 1.7e-7·‖X‖ for R = 128) cannot be told from zero, so dropping it could lose
// ~1e-7·‖B‖‖A‖ of the product; rank-deficient factors go to the QR route, which resolves rank to ~dims·ε.
constexpr double kGramOrthogonality = 1e-8;
constexpr double kGramAcceptance = 1e-8;

// X = Q · diag(s) · Wᵀ; Q has orthonormal columns and is never formed.
struct FactorRoot {
  Eigen::VectorXd s;  // > 0
  Eigen::MatrixXd W;  // R × s.size(), orthonormal columns
};

struct GramRoot {
  FactorRoot root;
  double norm = 0.0;       // ‖X‖₂ = √λ_max
  double condition = 0.0;  // κ(X) = √(λ_max / λ_min); +inf when λ_min ≤ 0 (rank-deficient to round-off)
  bool orthonormal_enough() const { return kEpsilon * condition * condition <= kGramOrthogonality; }
};

FactoredSvd empty_svd(Eigen::Index inner) {
  FactoredSvd result;
  result.sigma.resize(0);
  result.up_transform.resize(inner, 0);
  result.down_transform.resize(0, inner);
  return result;
}

// G must hold XᵀX in its lower triangle.
GramRoot gram_root(const Eigen::MatrixXd& gram) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram, Eigen::ComputeEigenvectors);
  if (eigen.info() != Eigen::Success) {
    throw Error(ErrorCode::numeric_failure, "factored SVD: symmetric eigen-decomposition did not converge");
  }
  const Eigen::VectorXd& lambda = eigen.eigenvalues();  // ascending
  GramRoot result;
  const double lambda_max = lambda.size() > 0 ? lambda(lambda.size() - 1) : 0.0;
  const double lambda_min = lambda.size() > 0 ? lambda(0) : 0.0;
  result.norm = std::sqrt(std::max(lambda_max, 0.0));
  result.condition = lambda_min > 0.0 ? std::sqrt(lambda_max / lambda_min)
                                      : std::numeric_limits<double>::infinity();
  if (lambda_min > 0.0) {  // otherwise the QR route takes over
    result.root.s = lambda.cwiseSqrt();
    result.root.W = eigen.eigenvectors();
  }
  return result;
}

Eigen::MatrixXd gram_of_columns(const MatrixRM& B) {  // BᵀB, lower triangle
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(B.cols(), B.cols());
  gram.selfadjointView<Eigen::Lower>().rankUpdate(B.transpose());
  return gram;
}

Eigen::MatrixXd gram_of_rows(const MatrixRM& A) {  // AAᵀ, lower triangle
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(A.rows(), A.rows());
  gram.selfadjointView<Eigen::Lower>().rankUpdate(A);
  return gram;
}

// Householder QR of X (rows × R, overwritten), then the SVD of its R. Directions with
// s ≤ max(rows, R)·ε·s_max are dropped: that is the backward error of the QR plus the small SVD, so they
// are indistinguishable from exact rank deficiency (the usual LAPACK/NumPy rank tolerance).
FactorRoot qr_root(Eigen::MatrixXd& factor) {
  Eigen::HouseholderQR<Eigen::Ref<Eigen::MatrixXd>> qr(factor);
  const Eigen::Index rows = std::min(factor.rows(), factor.cols());
  const Eigen::MatrixXd r = qr.matrixQR().topRows(rows).triangularView<Eigen::Upper>();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(r, Eigen::ComputeThinV);
  const Eigen::VectorXd& s = svd.singularValues();
  const double tolerance =
      static_cast<double>(std::max(factor.rows(), factor.cols())) * kEpsilon * (s.size() > 0 ? s(0) : 0.0);
  Eigen::Index kept = 0;
  while (kept < s.size() && s(kept) > tolerance) ++kept;
  return {s.head(kept), svd.matrixV().leftCols(kept)};
}

// SVD of the core diag(s_B) W_Bᵀ W_A diag(s_A); singular values ≤ noise_floor are dropped.
FactoredSvd core_svd(const FactorRoot& b, const FactorRoot& a, double noise_floor) {
  const Eigen::MatrixXd core = b.s.asDiagonal() * (b.W.transpose() * a.W) * a.s.asDiagonal();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(core, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXd& sigma = svd.singularValues();
  Eigen::Index rank = 0;
  while (rank < sigma.size() && sigma(rank) > noise_floor) ++rank;

  FactoredSvd result;
  result.sigma = sigma.head(rank);
  const Eigen::VectorXd sqrt_sigma = result.sigma.cwiseSqrt();
  result.up_transform =
      b.W * (b.s.cwiseInverse().asDiagonal() * svd.matrixU().leftCols(rank) * sqrt_sigma.asDiagonal());
  result.down_transform =
      (sqrt_sigma.asDiagonal() * svd.matrixV().leftCols(rank).transpose() * a.s.cwiseInverse().asDiagonal()) *
      a.W.transpose();
  return result;
}

FactoredSvd qr_route(const MatrixRM& B, const MatrixRM& A) {
  Eigen::MatrixXd b_copy = B;              // m × R, column-major for the in-place QR
  Eigen::MatrixXd a_copy = A.transpose();  // n × R
  const FactorRoot b = qr_root(b_copy);
  const FactorRoot a = qr_root(a_copy);
  if (b.s.size() == 0 || a.s.size() == 0) return empty_svd(B.cols());
  // Householder QR is backward stable: each computed σ is off by ≲ max(m, n, R)·ε·‖B‖‖A‖ in absolute
  // terms, so values at or below that are zero to working precision.
  const double dims = static_cast<double>(std::max({B.rows(), A.cols(), B.cols()}));
  FactoredSvd result = core_svd(b, a, dims * kEpsilon * b.s(0) * a.s(0));
  result.qr_fallback = true;
  return result;
}

void check_shapes(const MatrixRM& B, const MatrixRM& A) {
  if (B.cols() != A.rows()) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("factored SVD: up is {}×{} but down is {}×{} (inner dimensions differ)", B.rows(),
                            B.cols(), A.rows(), A.cols()));
  }
}

// A NaN or Inf entry makes its column's squared norm — a Gram diagonal entry — NaN or Inf; checking the
// R diagonal entries is free, where scanning the factors costs as much as the Gram itself.
void check_finite(const Eigen::MatrixXd& gram) {
  if (!gram.diagonal().allFinite()) {
    throw Error(ErrorCode::numeric_failure, "factored SVD: the factors contain NaN or Inf");
  }
}

}  // namespace

void FactoredSvd::truncate(std::size_t k) {
  const Eigen::Index keep = std::min(static_cast<Eigen::Index>(k), sigma.size());
  sigma.conservativeResize(keep);
  up_transform.conservativeResize(Eigen::NoChange, keep);
  down_transform.conservativeResize(keep, Eigen::NoChange);
}

FactoredSvd factored_svd(const MatrixRM& B, const MatrixRM& A) {
  check_shapes(B, A);
  const Eigen::Index inner = B.cols();
  if (inner == 0 || B.rows() == 0 || A.cols() == 0) return empty_svd(inner);

  const Eigen::MatrixXd gram_b = gram_of_columns(B);
  const Eigen::MatrixXd gram_a = gram_of_rows(A);
  check_finite(gram_b);
  check_finite(gram_a);
  const GramRoot b = gram_root(gram_b);
  const GramRoot a = gram_root(gram_a);
  if (b.norm == 0.0 || a.norm == 0.0) return empty_svd(inner);  // an all-zero factor
  if (!b.orthonormal_enough() || !a.orthonormal_enough()) return qr_route(B, A);

  // Error bound of the Gram route: perturbing a Gram by δ (eigen-solver backward error ~R·ε plus the
  // Gram's summation error ~√max(m, n)·ε, both relative to λ_max) moves the factor by δ·‖X‖·κ(X), so each
  // singular value of B·A moves by ≲ c·ε·(κ_B + κ_A)·‖B‖‖A‖. That is small against σ₁ only when B·A does
  // not cancel (σ₁ ≪ ‖B‖‖A‖); the QR route is accurate to c·ε·‖B‖‖A‖ always.
  const double c = static_cast<double>(inner) + std::sqrt(static_cast<double>(std::max(B.rows(), A.cols())));
  const double error_bound = c * kEpsilon * (b.condition + a.condition) * b.norm * a.norm;
  FactoredSvd result = core_svd(b.root, a.root, error_bound);
  if (result.rank() == 0 || error_bound > kGramAcceptance * result.sigma(0)) return qr_route(B, A);
  return result;
}

}  // namespace lorakit
