// factored_svd against an independent reference: the dense product B·A and Eigen's JacobiSVD in double
// (long double where the product itself cancels in double), on small random LoRAs.
//
// Tolerances, stated once:
//   singular values   |σᵢ − σᵢ^ref| ≤ 1e-6·σᵢ^ref + 1e-8·σ₁^ref  (1e-6 relative; tiny values relative to σ₁:
//                     when B·A cancels to 1e-7·‖B‖‖A‖, double itself resolves σ only to ε‖B‖‖A‖ ≈ 3e-9·σ₁)
//   truncated product ‖B·up_k·down_k·A − U_kΣ_kV_kᵀ‖_F ≤ 1e-9·‖B·A‖_F
//   orthonormality    ‖UᵀU − I‖_max ≤ 1e-7 (U = B·up·Σ^{-½}, likewise V; the factors are written in
//                     fp16/bf16/fp32, which hold 5e-4/4e-3/6e-8)
//   √σ split          column norms of B·up (row norms of down·A) equal √σᵢ to 1e-7 relative
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"
#include "spectrum_test_util.hpp"

namespace lorakit {
namespace {

using test::random_matrix;
using test::random_orthonormal;

using LongMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;

constexpr double kSigmaRelative = 1e-6;
constexpr double kSigmaFloor = 1e-8;  // of σ₁
constexpr double kProductRelative = 1e-9;
constexpr double kOrthonormal = 1e-7;

struct DenseReference {
  Eigen::VectorXd sigma;
  Eigen::MatrixXd U, V;
};

DenseReference dense_svd(const MatrixRM& B, const MatrixRM& A) {
  const Eigen::MatrixXd product = B * A;
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(product, Eigen::ComputeThinU | Eigen::ComputeThinV);
  return {svd.singularValues(), svd.matrixU(), svd.matrixV()};
}

// Singular values of B·A with the product formed and decomposed in long double (64-bit mantissa).
Eigen::VectorXd long_double_sigma(const MatrixRM& B, const MatrixRM& A) {
  const LongMatrix product = B.cast<long double>() * A.cast<long double>();
  return Eigen::JacobiSVD<LongMatrix>(product).singularValues().cast<double>();
}

void expect_sigma_matches(const Eigen::VectorXd& sigma, const Eigen::VectorXd& reference) {
  ASSERT_LE(sigma.size(), reference.size());
  for (Eigen::Index i = 0; i < reference.size(); ++i) {
    const double tolerance = kSigmaRelative * reference(i) + kSigmaFloor * reference(0);
    const double value = i < sigma.size() ? sigma(i) : 0.0;  // dropped values are zeros
    EXPECT_NEAR(value, reference(i), tolerance) << "singular value " << i;
  }
}

void expect_orthonormal_columns(const Eigen::MatrixXd& Q, const char* what) {
  const Eigen::MatrixXd gram = Q.transpose() * Q;
  const double deviation = (gram - Eigen::MatrixXd::Identity(Q.cols(), Q.cols())).cwiseAbs().maxCoeff();
  EXPECT_LE(deviation, kOrthonormal) << what;
}

// Every property the planner relies on, against the dense reference.
void expect_exact_svd(const MatrixRM& B, const MatrixRM& A, const FactoredSvd& svd,
                      const Eigen::VectorXd& reference_sigma) {
  const Eigen::Index rank = svd.sigma.size();
  ASSERT_EQ(svd.up_transform.rows(), B.cols());
  ASSERT_EQ(svd.up_transform.cols(), rank);
  ASSERT_EQ(svd.down_transform.rows(), rank);
  ASSERT_EQ(svd.down_transform.cols(), A.rows());
  expect_sigma_matches(svd.sigma, reference_sigma);
  if (rank == 0) return;

  const Eigen::MatrixXd up = B * svd.up_transform;      // U·√Σ
  const Eigen::MatrixXd down = svd.down_transform * A;  // √Σ·Vᵀ
  for (Eigen::Index i = 0; i < rank; ++i) {
    const double root = std::sqrt(svd.sigma(i));
    EXPECT_NEAR(up.col(i).norm(), root, kOrthonormal * root) << "up column " << i;
    EXPECT_NEAR(down.row(i).norm(), root, kOrthonormal * root) << "down row " << i;
  }
  const Eigen::VectorXd inverse_root = svd.sigma.cwiseSqrt().cwiseInverse();
  expect_orthonormal_columns(up * inverse_root.asDiagonal(), "U");
  expect_orthonormal_columns(down.transpose() * inverse_root.asDiagonal(), "V");

  const DenseReference dense = dense_svd(B, A);
  const double norm = dense.sigma.norm();
  for (const Eigen::Index k : {Eigen::Index{1}, rank / 2, rank}) {
    if (k == 0) continue;
    const Eigen::MatrixXd ours = up.leftCols(k) * down.topRows(k);
    const Eigen::MatrixXd best =
        dense.U.leftCols(k) * dense.sigma.head(k).asDiagonal() * dense.V.leftCols(k).transpose();
    EXPECT_LE((ours - best).norm(), kProductRelative * norm) << "rank-" << k << " truncation";
  }
}

TEST(FactoredSvd, LinearLoraMatchesDenseSvdByTheCholeskyRoute) {
  std::mt19937_64 rng(1);
  const MatrixRM B = random_matrix(40, 8, rng);
  const MatrixRM A = random_matrix(8, 30, rng);
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 8u);
  EXPECT_EQ(svd.route, SvdRoute::cholesky);  // well-conditioned random factors: the fast route is accurate
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, ConvLoraWithFlattenedKernel) {
  std::mt19937_64 rng(2);
  const MatrixRM B = random_matrix(20, 8, rng);      // up (out=20, r=8, 1, 1)
  const MatrixRM A = random_matrix(8, 6 * 9, rng);   // down (r=8, in=6, 3, 3) flattened
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 8u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, Conv3dLoraWithFlattenedKernel) {
  std::mt19937_64 rng(3);
  const MatrixRM B = random_matrix(16, 6, rng);      // up (out=16, r=6, 1, 1, 1)
  const MatrixRM A = random_matrix(6, 3 * 27, rng);  // down (r=6, in=3, 3, 3, 3) flattened
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 6u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, DuplicatedUpColumnsLoseOneDirection) {
  std::mt19937_64 rng(4);
  MatrixRM B = random_matrix(40, 8, rng);
  const MatrixRM A = random_matrix(8, 30, rng);
  B.col(5) = B.col(2);  // B·A = B' · A' with A' of rank 7: rank(B·A) = 7
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 7u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, ZeroDownRowLosesOneDirection) {
  std::mt19937_64 rng(5);
  const MatrixRM B = random_matrix(40, 8, rng);
  MatrixRM A = random_matrix(8, 30, rng);
  A.row(3).setZero();
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 7u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, BothFactorsRankDeficient) {
  std::mt19937_64 rng(6);
  MatrixRM B = random_matrix(40, 8, rng);
  MatrixRM A = random_matrix(8, 30, rng);
  B.col(7) = 2.0 * B.col(0) - B.col(1);
  A.row(4).setZero();
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 6u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, InnerRankAboveTheMatrixSize) {  // r = 12 > n = 9: at most 9 directions
  std::mt19937_64 rng(7);
  const MatrixRM B = random_matrix(20, 12, rng);
  const MatrixRM A = random_matrix(12, 9, rng);
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 9u);
  expect_exact_svd(B, A, svd, dense_svd(B, A).sigma);
}

TEST(FactoredSvd, AllZeroUpGivesRankZero) {
  std::mt19937_64 rng(8);
  const MatrixRM B = MatrixRM::Zero(40, 8);
  const MatrixRM A = random_matrix(8, 30, rng);
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 0u);
  EXPECT_EQ(svd.up_transform.rows(), 8);
  EXPECT_EQ(svd.up_transform.cols(), 0);
  EXPECT_EQ(svd.down_transform.rows(), 0);
  EXPECT_EQ(svd.down_transform.cols(), 8);
}

TEST(FactoredSvd, AllZeroDownGivesRankZero) {
  std::mt19937_64 rng(9);
  const MatrixRM B = random_matrix(40, 8, rng);
  const MatrixRM A = MatrixRM::Zero(8, 30);
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 0u);
  EXPECT_EQ(svd.up_transform.rows(), 8);
  EXPECT_EQ(svd.down_transform.cols(), 8);
}

TEST(FactoredSvd, ProductOfNonzeroFactorsThatIsZero) {  // B·A = 0 with ‖B‖, ‖A‖ ~ 1
  std::mt19937_64 rng(10);
  const Eigen::MatrixXd basis = random_orthonormal(8, 8, rng);
  const MatrixRM B = random_matrix(40, 4, rng) * basis.leftCols(4).transpose();   // rows in span(q1..q4)
  const MatrixRM A = basis.rightCols(4) * random_matrix(4, 30, rng);              // columns ⟂ to it
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.rank(), 0u);
}

TEST(FactoredSvd, NearlyCancellingFactorsUseTheQrRoute) {
  // B = [X, X + δE], A = [Y; −Y + δF]: B·A = δ(X·F − E·Y) + δ²E·F, so σ₁(B·A) ≈ 1e-7·‖B‖‖A‖. The dense
  // double product itself cancels (error ~ε‖B‖‖A‖), so the reference forms it in long double.
  std::mt19937_64 rng(11);
  constexpr double delta = 1e-7;
  const MatrixRM X = random_matrix(40, 4, rng), E = random_matrix(40, 4, rng);
  const MatrixRM Y = random_matrix(4, 30, rng), F = random_matrix(4, 30, rng);
  MatrixRM B(40, 8), A(8, 30);
  B << X, X + delta * E;
  A << Y, -Y + delta * F;
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.route, SvdRoute::qr);
  EXPECT_EQ(svd.rank(), 8u);
  const Eigen::VectorXd reference = long_double_sigma(B, A);
  const double scale = B.operatorNorm() * A.operatorNorm();
  EXPECT_LT(reference(0), 1e-6 * scale);  // the case really cancels
  expect_sigma_matches(svd.sigma, reference);
}

Eigen::VectorXd log_spaced(Eigen::Index count, double smallest) {  // 1 … smallest, geometric
  Eigen::VectorXd s(count);
  for (Eigen::Index i = 0; i < count; ++i) {
    s(i) = std::pow(smallest, static_cast<double>(i) / static_cast<double>(count - 1));
  }
  return s;
}

TEST(FactoredSvd, WideSpectrumFromOneToOneMillionthByTheGramRoute) {
  // B = U·diag(√s)·Q, A = Qᵀ·diag(√s)·Vᵀ: B·A = U·diag(s)·Vᵀ with s known, from 1 down to 1e-6. Each
  // factor has κ = 1e3, within what the Gram route handles (orthonormal to ~ε·κ² ≈ 2e-10).
  std::mt19937_64 rng(12);
  const Eigen::VectorXd s = log_spaced(10, 1e-6);
  const Eigen::MatrixXd U = random_orthonormal(50, 10, rng), V = random_orthonormal(36, 10, rng);
  const Eigen::MatrixXd Q = random_orthonormal(10, 10, rng);
  const MatrixRM B = U * s.cwiseSqrt().asDiagonal() * Q;
  const MatrixRM A = Q.transpose() * s.cwiseSqrt().asDiagonal() * V.transpose();
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.route, SvdRoute::gram);  // σ_min = 1e-6·σ₁: too wide for the Cholesky route
  EXPECT_EQ(svd.rank(), 10u);
  expect_sigma_matches(svd.sigma, s);  // the constructed spectrum
  expect_exact_svd(B, A, svd, long_double_sigma(B, A));
}

TEST(FactoredSvd, SpectrumToOneTenThousandthByTheCholeskyRouteRootedOnEitherFactor) {
  // σ from 1 to 1e-4 carried by one factor alone (κ = 1e4), the other orthonormal: the route roots its
  // Cholesky factor on the orthonormal one whichever side it is.
  std::mt19937_64 rng(15);
  const Eigen::VectorXd s = log_spaced(12, 1e-4);
  const MatrixRM wide_up = random_orthonormal(60, 12, rng) * s.asDiagonal() * random_orthonormal(12, 12, rng);
  const MatrixRM plain_down = random_orthonormal(45, 12, rng).transpose();
  const MatrixRM plain_up = random_orthonormal(60, 12, rng);
  const MatrixRM wide_down = random_orthonormal(12, 12, rng) * s.asDiagonal() * random_orthonormal(45, 12, rng).transpose();
  for (const auto& [B, A] : {std::pair{wide_up, plain_down}, std::pair{plain_up, wide_down}}) {
    const FactoredSvd svd = factored_svd(B, A);
    EXPECT_EQ(svd.route, SvdRoute::cholesky);
    expect_sigma_matches(svd.sigma, s);
    expect_exact_svd(B, A, svd, long_double_sigma(B, A));
  }
}

TEST(FactoredSvd, WideSpectrumInTheUpFactorAloneUsesTheQrRoute) {
  // κ(B) = 1e6 (its Gram has κ = 1e12): Q_B from the Gram would be orthonormal only to ~1e-4.
  std::mt19937_64 rng(13);
  const Eigen::VectorXd s = log_spaced(8, 1e-6);
  const MatrixRM B = random_orthonormal(40, 8, rng) * s.asDiagonal() * random_orthonormal(8, 8, rng);
  const MatrixRM A = random_orthonormal(30, 8, rng).transpose();  // orthonormal rows
  const FactoredSvd svd = factored_svd(B, A);
  EXPECT_EQ(svd.route, SvdRoute::qr);
  expect_sigma_matches(svd.sigma, s);  // σ(B·A) = σ(B) = s
  expect_exact_svd(B, A, svd, long_double_sigma(B, A));
}

TEST(FactoredSvd, TruncateKeepsTheLeadingDirections) {
  std::mt19937_64 rng(14);
  const MatrixRM B = random_matrix(24, 6, rng);
  const MatrixRM A = random_matrix(6, 18, rng);
  const FactoredSvd full = factored_svd(B, A);
  FactoredSvd cut = full;
  cut.truncate(2);
  ASSERT_EQ(cut.rank(), 2u);
  EXPECT_EQ(cut.up_transform.rows(), 6);
  EXPECT_EQ(cut.down_transform.cols(), 6);
  EXPECT_EQ(cut.sigma, full.sigma.head(2));
  EXPECT_EQ(cut.up_transform, full.up_transform.leftCols(2));
  EXPECT_EQ(cut.down_transform, full.down_transform.topRows(2));
  cut.truncate(5);  // more than it has: unchanged
  EXPECT_EQ(cut.rank(), 2u);
}

// One factor pair per route, as the route tests above build them.
std::vector<std::pair<MatrixRM, MatrixRM>> one_case_per_route(std::mt19937_64& rng) {
  const Eigen::VectorXd wide = log_spaced(10, 1e-6);
  const Eigen::MatrixXd Q = random_orthonormal(10, 10, rng);
  const MatrixRM gram_up = random_orthonormal(50, 10, rng) * wide.cwiseSqrt().asDiagonal() * Q;
  const MatrixRM gram_down = Q.transpose() * wide.cwiseSqrt().asDiagonal() * random_orthonormal(36, 10, rng).transpose();
  const MatrixRM qr_up = random_orthonormal(40, 10, rng) * wide.asDiagonal() * random_orthonormal(10, 10, rng);
  return {{random_matrix(48, 10, rng), random_matrix(10, 40, rng)},
          {gram_up, gram_down},
          {qr_up, random_orthonormal(30, 10, rng).transpose()}};
}

TEST(FactoredSvd, OnlyTheWantedDirectionsGetTransforms) {
  std::mt19937_64 rng(16);
  std::vector<SvdRoute> routes;
  for (const auto& [B, A] : one_case_per_route(rng)) {
    int calls = 0;
    Eigen::VectorXd seen;
    const FactoredSvd svd = factored_svd(B, A, [&](const Eigen::VectorXd& sigma) {
      ++calls;
      seen = sigma;
      return std::size_t{3};
    });
    routes.push_back(svd.route);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, svd.sigma);
    EXPECT_EQ(svd.rank(), 10u);  // every singular value, for rank selection and retention
    ASSERT_EQ(svd.directions(), 3u);
    ASSERT_EQ(svd.down_transform.rows(), 3);
    const DenseReference dense = dense_svd(B, A);
    const Eigen::MatrixXd ours = (B * svd.up_transform) * (svd.down_transform * A);
    const Eigen::MatrixXd best = dense.U.leftCols(3) * dense.sigma.head(3).asDiagonal() * dense.V.leftCols(3).transpose();
    EXPECT_LE((ours - best).norm(), kProductRelative * dense.sigma.norm()) << svd_route_name(svd.route);
  }
  EXPECT_EQ(routes, (std::vector{SvdRoute::cholesky, SvdRoute::gram, SvdRoute::qr}));
}

// Regression (fuzz/resize_fuzz.cpp under UBSan): with no direction wanted, each route gives the whole
// spectrum and empty transforms without running Eigen's triangular kernels on empty operands.
TEST(FactoredSvd, NoWantedDirectionGivesTheSpectrumAndEmptyTransforms) {
  std::mt19937_64 rng(16);
  std::vector<SvdRoute> routes;
  for (const auto& [B, A] : one_case_per_route(rng)) {
    const FactoredSvd svd = factored_svd(B, A, [](const Eigen::VectorXd&) { return std::size_t{0}; });
    routes.push_back(svd.route);
    EXPECT_EQ(svd.rank(), 10u);
    EXPECT_EQ(svd.directions(), 0u);
    EXPECT_EQ(svd.up_transform.rows(), B.cols());
    EXPECT_EQ(svd.down_transform.cols(), A.rows());
    const DenseReference dense = dense_svd(B, A);
    EXPECT_LE((svd.sigma - dense.sigma.head(svd.sigma.size())).norm(), kSigmaRelative * dense.sigma(0)) << svd_route_name(svd.route);
  }
  EXPECT_EQ(routes, (std::vector{SvdRoute::cholesky, SvdRoute::gram, SvdRoute::qr}));
}

TEST(FactoredSvd, WantingMoreDirectionsThanTheRankGivesTheRank) {
  std::mt19937_64 rng(17);
  const FactoredSvd svd =
      factored_svd(random_matrix(20, 6, rng), random_matrix(6, 15, rng), [](const Eigen::VectorXd&) { return 100; });
  EXPECT_EQ(svd.directions(), 6u);
  int calls = 0;
  const FactoredSvd zero = factored_svd(MatrixRM::Zero(20, 6), random_matrix(6, 15, rng), [&](const Eigen::VectorXd& sigma) {
    ++calls;
    EXPECT_EQ(sigma.size(), 0);
    return 4;
  });
  EXPECT_EQ(calls, 1);  // the caller decides on an all-zero module too
  EXPECT_EQ(zero.directions(), 0u);
}

TEST(FactoredSvd, MismatchedInnerDimensionsAreRejected) {
  std::mt19937_64 rng(15);
  try {
    factored_svd(random_matrix(10, 4, rng), random_matrix(5, 10, rng));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::adapter_shape_mismatch);
    EXPECT_STREQ(error.what(), "factored SVD: up is 10×4 but down is 5×10 (inner dimensions differ)");
  }
}

TEST(FactoredSvd, NonFiniteFactorsAreRejected) {
  std::mt19937_64 rng(16);
  MatrixRM B = random_matrix(10, 4, rng);
  B(3, 1) = std::numeric_limits<double>::quiet_NaN();
  try {
    factored_svd(B, random_matrix(4, 10, rng));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::numeric_failure);
  }
}

}  // namespace
}  // namespace lorakit
