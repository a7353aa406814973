// SVD of a product B·A from its factors (MATH.md §1).
//
// Three routes, cheapest first; each is taken only when its own error bound is small against σ₁.
// With the Grams in float64 written as Cholesky products G_B = BᵀB = L_B L_Bᵀ and G_A = AAᵀ = L_A L_Aᵀ,
// B = Q_B L_Bᵀ and A = L_A Q_Aᵀ with Q_B, Q_A orthonormal and never formed.
//
// Cholesky route, one r×r eigen-decomposition: rooted on A, B·A = (B·L_A)·Q_Aᵀ and
// M = (B·L_A)ᵀ(B·L_A) = L_Aᵀ G_B L_A = W Σ² Wᵀ gives B·A's singular values and right vectors, so
//   up_transform = L_A W Σ^{-½},  down_transform = Σ^{½} Wᵀ L_A⁻¹.
// Squaring the core costs accuracy on singular values far below σ₁: the route refuses spectra whose
// smallest value it cannot resolve.
//
// Gram route, the SVD of the core: B·A = Q_B (L_Bᵀ L_A) Q_Aᵀ and C = L_Bᵀ L_A = U_c Σ V_cᵀ give
//   up_transform = L_B⁻ᵀ U_c Σ^{½},  down_transform = Σ^{½} V_cᵀ L_A⁻¹.
//
// QR route, for factors the Grams cannot resolve (rank-deficient, ill-conditioned, or nearly cancelling
// in the product): each factor X = Q_ρ·y by Householder QR and a column-pivoted QR of its R, with
// X·T_X = Q_ρ·z for small transforms T_X (see QrRoot); then the core y_B·y_Aᵀ = U_c Σ V_cᵀ gives
//   up_transform = T_B(U_c Σ^{½}),  down_transform = T_A(V_c Σ^{½})ᵀ.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"

namespace lorakit {
namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

// Grams square condition numbers. A Cholesky root is used only when (1) the Q it implies is orthonormal
// to ~ε·κ(X)² ≤ 1e-8 (κ ≲ 6700, far above the κ ≈ 20–100 of trained-like factors); and (2) the route's
// singular-value error bound is ≤ 1e-8·σ₁, two orders under the product requirement (1e-6) because the
// bound is a typical-case one. Rank-deficient factors fail (1) and go to the QR route, which resolves
// rank to ~dims·ε: a Gram cannot tell an eigenvalue at its round-off level (s ≲ 1.7e-7·‖X‖ for r = 128)
// from zero, so dropping it could lose ~1e-7·‖B‖‖A‖ of the product.
constexpr double kOrthogonality = 1e-8;
constexpr double kAcceptance = 1e-8;
// The squared core's singular vectors for σᵢ, σⱼ are orthonormal to ~ε·σ₁²/(σᵢσⱼ). 1e-7 is far below what
// the written factors can hold (fp16 keeps 5e-4, bf16 4e-3); the products and truncations the planner
// uses stay exact to ~ε·‖B‖‖A‖ whatever the vectors' orthonormality.
constexpr double kSquaredOrthogonality = 1e-7;

// The number of directions to compute: what the caller wants, at most all ρ of σ.
Eigen::Index wanted_directions(const Eigen::VectorXd& sigma, const DirectionsWanted& wanted) {
  if (!wanted) return sigma.size();
  return std::min(static_cast<Eigen::Index>(wanted(sigma)), sigma.size());
}

// Gives `result` empty transforms when no direction is wanted (d = 0), and says so. Eigen's triangular
// products and solves bind a reference to an empty operand's (null) data, which is undefined behaviour
// (UBSan, found by fuzz/resize_fuzz.cpp), so the routes must not run them for d = 0.
bool without_directions(FactoredSvd& result, Eigen::Index inner, Eigen::Index d) {
  if (d > 0) return false;
  result.up_transform.resize(inner, 0);
  result.down_transform.resize(0, inner);
  return true;
}

FactoredSvd empty_svd(Eigen::Index inner, const DirectionsWanted& wanted) {
  FactoredSvd result;
  result.sigma.resize(0);
  without_directions(result, inner, wanted_directions(result.sigma, wanted));  // the caller decides too
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

// The symmetric 1-norm (max column sum) of a Gram held in its lower triangle: ≥ its 2-norm, ‖X‖₂².
double gram_norm_bound(const Eigen::MatrixXd& gram) {
  double largest = 0.0;
  for (Eigen::Index j = 0; j < gram.cols(); ++j) {  // column j = row j left of the diagonal + column j below
    const Eigen::Index below = gram.rows() - j;
    largest = std::max(largest, gram.row(j).head(j).cwiseAbs().sum() + gram.col(j).tail(below).cwiseAbs().sum());
  }
  return largest;
}

// A factor X as Q·Lᵀ, from the Cholesky factor of its Gram XᵀX = L·Lᵀ.
struct CholeskyRoot {
  Eigen::MatrixXd L;          // lower triangular
  double condition = 0.0;     // estimate of κ(X·D⁻¹), D the column norms of X (see cholesky_root)
  double norm_squared = 0.0;  // bound of ‖X‖₂²
};

// Empty when the Gram is not positive definite to round-off or too ill-conditioned for Q to be
// orthonormal. Cholesky is accurate relative to the condition of the Gram with its diagonal scaled to
// ones, G = D·C·D (van der Sluis): that is what is factored and judged, so factors whose columns merely
// differ in size (LoHa's face-splitting products span κ₁·κ₂ in column norms) stay on this route.
std::optional<CholeskyRoot> cholesky_root(const Eigen::MatrixXd& gram) {
  const Eigen::VectorXd d = gram.diagonal().cwiseSqrt();
  if (!(d.minCoeff() > 0.0)) return std::nullopt;  // a zero column
  const Eigen::VectorXd d_inverse = d.cwiseInverse();
  const Eigen::MatrixXd scaled = d_inverse.asDiagonal() * gram.triangularView<Eigen::Lower>().toDenseMatrix() *
                                 d_inverse.asDiagonal();
  const Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(scaled);
  if (llt.info() != Eigen::Success) return std::nullopt;
  // rcond estimates 1/κ₁(C); κ₂(C) ≤ r·κ₁(C), and κ(X·D⁻¹)² = κ₂(C).
  const double rcond = llt.rcond();
  if (!(rcond > 0.0)) return std::nullopt;
  const double condition_squared = static_cast<double>(gram.rows()) / rcond;
  if (kEpsilon * condition_squared > kOrthogonality) return std::nullopt;
  return CholeskyRoot{d.asDiagonal() * llt.matrixL().toDenseMatrix(), std::sqrt(condition_squared),
                      gram_norm_bound(gram)};
}

// Cholesky route rooted on A (see the top of the file). Empty when the squared core cannot resolve the
// smallest singular value to 1e-8·σ₁, or U would not be orthonormal enough.
std::optional<FactoredSvd> squared_core_route(const CholeskyRoot& a, const Eigen::MatrixXd& gram_b,
                                              double norm_b_squared, double dims,
                                              const DirectionsWanted& wanted) {
  const Eigen::MatrixXd& L = a.L;
  const Eigen::MatrixXd gram_b_times_l = gram_b.selfadjointView<Eigen::Lower>() * L;
  const Eigen::MatrixXd m = L.transpose().triangularView<Eigen::Upper>() * gram_b_times_l;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(m, Eigen::ComputeEigenvectors);
  if (eigen.info() != Eigen::Success) return std::nullopt;
  const Eigen::VectorXd lambda = eigen.eigenvalues().reverse();  // descending
  // U = B·up_transform·Σ^{-½} is orthonormal only to ~ε·λ₁/λ_min (the eigen-solver's backward error over
  // σᵢσⱼ): accepted down to σ_min ≈ 4.7e-5·σ₁.
  const double lambda_min = lambda(lambda.size() - 1);
  if (!(lambda_min > 0.0) || kEpsilon * lambda(0) / lambda_min > kSquaredOrthogonality) return std::nullopt;

  // Error bounds (absolute, on each σ): the root perturbs A by ≲ c·ε·κ_A·‖A‖, moving σ by
  // c·ε·κ_A·‖B‖‖A‖; forming and decomposing M moves each λ = σ² by ≲ c·ε·‖B‖²‖A‖², i.e. σ by that over σ.
  const double c = static_cast<double>(L.rows()) + std::sqrt(dims);
  const double norm_product_squared = a.norm_squared * norm_b_squared;
  const Eigen::VectorXd sigma = lambda.cwiseSqrt();
  const double root_error = c * kEpsilon * a.condition * std::sqrt(norm_product_squared);
  const double square_error = c * kEpsilon * norm_product_squared / sigma(sigma.size() - 1);
  if (root_error + square_error > kAcceptance * sigma(0)) return std::nullopt;

  const Eigen::Index d = wanted_directions(sigma, wanted);
  const Eigen::MatrixXd w = eigen.eigenvectors().rowwise().reverse().leftCols(d);
  const Eigen::VectorXd sqrt_sigma = sigma.head(d).cwiseSqrt();
  FactoredSvd result;
  result.route = SvdRoute::cholesky;
  result.sigma = sigma;
  if (without_directions(result, L.rows(), d)) return result;
  result.up_transform = L.triangularView<Eigen::Lower>() * (w * sqrt_sigma.cwiseInverse().asDiagonal());
  // Σ^{½} Wᵀ L⁻¹ = (L⁻ᵀ W Σ^{½})ᵀ
  result.down_transform =
      L.transpose().triangularView<Eigen::Upper>().solve(w * sqrt_sigma.asDiagonal()).transpose();
  return result;
}

// The same route rooted on B: the SVD of (B·A)ᵀ = Aᵀ·Bᵀ with its transforms swapped back.
std::optional<FactoredSvd> squared_core_route_on_up(const CholeskyRoot& b, const Eigen::MatrixXd& gram_a,
                                                    double norm_a_squared, double dims,
                                                    const DirectionsWanted& wanted) {
  auto transposed = squared_core_route(b, gram_a, norm_a_squared, dims, wanted);
  if (!transposed) return std::nullopt;
  FactoredSvd result;
  result.route = SvdRoute::cholesky;
  result.sigma = std::move(transposed->sigma);
  result.up_transform = transposed->down_transform.transpose();
  result.down_transform = transposed->up_transform.transpose();
  return result;
}

// SVD of an r_b × r_a core; singular values ≤ noise_floor are dropped. Returns σ and the leading U_c, V_c.
struct CoreSvd {
  Eigen::VectorXd sigma;
  Eigen::MatrixXd U, V;
};
CoreSvd core_svd(const Eigen::MatrixXd& core, double noise_floor) {
  Eigen::BDCSVD<Eigen::MatrixXd> svd(core, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXd& sigma = svd.singularValues();
  Eigen::Index rank = 0;
  while (rank < sigma.size() && sigma(rank) > noise_floor) ++rank;
  return {sigma.head(rank), svd.matrixU().leftCols(rank), svd.matrixV().leftCols(rank)};
}

// Gram route (see the top of the file). Empty when its error bound is not small against σ₁: factors
// that nearly cancel (σ₁(BA) ≪ ‖B‖‖A‖).
std::optional<FactoredSvd> gram_route(const CholeskyRoot& b, const CholeskyRoot& a, double dims,
                                      const DirectionsWanted& wanted) {
  // Each root perturbs its factor by ≲ c·ε·κ·‖X‖ (Gram summation ~√dims·ε, Cholesky ~r·ε, relative to
  // ‖X‖²), moving every σ of B·A by ≲ c·ε·(κ_B + κ_A)·‖B‖‖A‖.
  const double c = static_cast<double>(b.L.rows()) + std::sqrt(dims);
  const double error_bound =
      c * kEpsilon * (b.condition + a.condition) * std::sqrt(b.norm_squared * a.norm_squared);
  const CoreSvd core = core_svd(b.L.transpose() * a.L, error_bound);
  if (core.sigma.size() == 0 || error_bound > kAcceptance * core.sigma(0)) return std::nullopt;

  const Eigen::Index d = wanted_directions(core.sigma, wanted);
  const Eigen::VectorXd sqrt_sigma = core.sigma.head(d).cwiseSqrt();
  FactoredSvd result;
  result.route = SvdRoute::gram;
  result.sigma = core.sigma;
  if (without_directions(result, b.L.rows(), d)) return result;
  result.up_transform =
      b.L.transpose().triangularView<Eigen::Upper>().solve(core.U.leftCols(d) * sqrt_sigma.asDiagonal());
  result.down_transform =
      a.L.transpose().triangularView<Eigen::Upper>().solve(core.V.leftCols(d) * sqrt_sigma.asDiagonal()).transpose();
  return result;
}

// A factor X (rows × R) as X = Q_ρ·y to round-off, Q_ρ orthonormal (rows × ρ) and never formed.
// Householder QR gives X = Q·R; column-pivoted QR of the small R gives R·Π = Q₂·R₂ with |R₂[i,i]|
// non-increasing, so X·Π = (Q·Q₂)·R₂. Its rows beyond ρ are round-off (see qr_root), and since R₂ is
// triangular, X·Π[:, :ρ] = Q_ρ·R₁₁ exactly: Q_ρ = X·Π[:, :ρ]·R₁₁⁻¹.
struct QrRoot {
  Eigen::MatrixXd y;    // ρ × R: R₂'s first ρ rows, columns un-pivoted
  Eigen::MatrixXd r11;  // ρ × ρ, upper triangular
  Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic> pivots;  // Π
  Eigen::Index rank() const { return y.rows(); }
  // T (R × k) with X·T = Q_ρ·z, for z (ρ × k): T = Π·[R₁₁⁻¹·z; 0].
  Eigen::MatrixXd transform(const Eigen::MatrixXd& z) const {
    Eigen::MatrixXd padded = Eigen::MatrixXd::Zero(pivots.size(), z.cols());
    padded.topRows(rank()) = r11.triangularView<Eigen::Upper>().solve(z);
    return pivots * padded;
  }
};

// Diagonal entries of R₂ at or below max(rows, R)·ε·|R₂[0,0]| are dropped: that is the backward error
// of the QRs, so they are indistinguishable from exact rank deficiency (LAPACK xGELSY's rule). The
// column-pivoted QR replaces an SVD of R: ~4× cheaper at R = 256, as exact for the product.
QrRoot qr_root(Eigen::MatrixXd& factor) {
  const Eigen::HouseholderQR<Eigen::Ref<Eigen::MatrixXd>> qr(factor);
  const Eigen::Index rows = std::min(factor.rows(), factor.cols());
  const Eigen::MatrixXd r = qr.matrixQR().topRows(rows).triangularView<Eigen::Upper>();
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> pivoted(r);
  const Eigen::MatrixXd r2 = pivoted.matrixR().topRows(rows).triangularView<Eigen::Upper>();
  const double tolerance =
      static_cast<double>(std::max(factor.rows(), factor.cols())) * kEpsilon * std::abs(r2(0, 0));
  Eigen::Index kept = 0;
  while (kept < rows && std::abs(r2(kept, kept)) > tolerance) ++kept;
  QrRoot root;
  root.pivots = pivoted.colsPermutation();
  root.y = r2.topRows(kept) * root.pivots.transpose();
  root.r11 = r2.topLeftCorner(kept, kept);
  return root;
}

FactoredSvd qr_route(const MatrixRM& B, const MatrixRM& A, const DirectionsWanted& wanted) {
  Eigen::MatrixXd b_copy = B;              // m × R, column-major for the in-place QR
  Eigen::MatrixXd a_copy = A.transpose();  // n × R
  const QrRoot b = qr_root(b_copy);
  const QrRoot a = qr_root(a_copy);
  if (b.rank() == 0 || a.rank() == 0) return empty_svd(B.cols(), wanted);
  // B·A = Q_Bρ·(y_B·y_Aᵀ)·Q_Aρᵀ. Householder QR is backward stable: each computed σ is off by
  // ≲ max(m, n, R)·ε·‖B‖‖A‖ in absolute terms, so values at or below that are zero to working precision.
  const double dims = static_cast<double>(std::max({B.rows(), A.cols(), B.cols()}));
  const CoreSvd core = core_svd(b.y * a.y.transpose(), dims * kEpsilon * b.y.norm() * a.y.norm());
  const Eigen::Index d = wanted_directions(core.sigma, wanted);
  const Eigen::VectorXd sqrt_sigma = core.sigma.head(d).cwiseSqrt();
  FactoredSvd result;
  result.route = SvdRoute::qr;
  result.sigma = core.sigma;
  if (without_directions(result, B.cols(), d)) return result;
  result.up_transform = b.transform(core.U.leftCols(d) * sqrt_sigma.asDiagonal());
  result.down_transform = a.transform(core.V.leftCols(d) * sqrt_sigma.asDiagonal()).transpose();
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
// diagonal is free, where scanning the factors costs as much as the Gram itself.
void check_finite(const Eigen::MatrixXd& gram) {
  if (!gram.diagonal().allFinite()) {
    throw Error(ErrorCode::numeric_failure, "factored SVD: the factors contain NaN or Inf");
  }
}

// The squared core is tried on down's root first (trained up factors start at zero and are the more often
// ill-conditioned), then on up's when that is better conditioned; a spectrum too wide for it fails on
// either, and goes to the Gram route.
std::optional<FactoredSvd> gram_routes(const Eigen::MatrixXd& gram_b, const Eigen::MatrixXd& gram_a,
                                       double dims, const DirectionsWanted& wanted) {
  const std::optional<CholeskyRoot> a = cholesky_root(gram_a);
  if (a) {
    if (auto result = squared_core_route(*a, gram_b, gram_norm_bound(gram_b), dims, wanted)) return result;
  }
  const std::optional<CholeskyRoot> b = cholesky_root(gram_b);
  if (!b) return std::nullopt;
  if (!a || b->condition < a->condition) {
    const double norm_a_squared = a ? a->norm_squared : gram_norm_bound(gram_a);
    if (auto result = squared_core_route_on_up(*b, gram_a, norm_a_squared, dims, wanted)) return result;
  }
  if (!a) return std::nullopt;
  return gram_route(*b, *a, dims, wanted);
}

// Empty and all-zero products, then the routes that need only the Grams; empty when the product needs
// the QR route, which works on the factors themselves.
std::optional<FactoredSvd> svd_from_grams(const Eigen::MatrixXd& gram_b, const Eigen::MatrixXd& gram_a,
                                          Eigen::Index rows_b, Eigen::Index cols_a, const DirectionsWanted& wanted) {
  const Eigen::Index inner = gram_b.rows();
  if (inner == 0 || rows_b == 0 || cols_a == 0) return empty_svd(inner, wanted);
  check_finite(gram_b);
  check_finite(gram_a);
  if (gram_b.diagonal().maxCoeff() == 0.0 || gram_a.diagonal().maxCoeff() == 0.0) {
    return empty_svd(inner, wanted);  // an all-zero factor
  }
  return gram_routes(gram_b, gram_a, static_cast<double>(std::max(rows_b, cols_a)), wanted);
}

}  // namespace

const char* svd_route_name(SvdRoute route) {
  switch (route) {
    case SvdRoute::cholesky: return "Cholesky";
    case SvdRoute::gram: return "Gram";
    case SvdRoute::qr: return "QR";
    case SvdRoute::hadamard_gram: return "Hadamard Gram";
    case SvdRoute::dense_gram: return "dense Gram";
  }
  return "?";
}

void FactoredSvd::truncate(std::size_t k) {
  const Eigen::Index keep = std::min(static_cast<Eigen::Index>(k), sigma.size());
  sigma.conservativeResize(keep);
  const Eigen::Index kept_directions = std::min(keep, up_transform.cols());
  up_transform.conservativeResize(Eigen::NoChange, kept_directions);
  down_transform.conservativeResize(kept_directions, Eigen::NoChange);
}

FactoredSvd factored_svd(const MatrixRM& B, const MatrixRM& A, const DirectionsWanted& wanted) {
  check_shapes(B, A);
  if (auto result = svd_from_grams(gram_of_columns(B), gram_of_rows(A), B.rows(), A.cols(), wanted)) {
    return std::move(*result);
  }
  return qr_route(B, A, wanted);
}

FactoredSvd factored_svd_from_grams(const Eigen::MatrixXd& gram_b, const Eigen::MatrixXd& gram_a,
                                    Eigen::Index rows_b, Eigen::Index cols_a, const FactorSource& factors,
                                    const DirectionsWanted& wanted) {
  if (gram_b.rows() != gram_a.rows()) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("factored SVD: up has inner dimension {} but down has {}", gram_b.rows(), gram_a.rows()));
  }
  if (auto result = svd_from_grams(gram_b, gram_a, rows_b, cols_a, wanted)) return std::move(*result);
  const auto [B, A] = factors();
  return qr_route(B, A, wanted);
}

}  // namespace lorakit
