// hadamard_svd (LoHa spectra) against an independent reference: ΔW = (B1·A1) ⊙ (B2·A2) formed element-wise
// and decomposed by Eigen's JacobiSVD in double. Both routes (face-splitting Grams, ΔW's own Gram), both
// orientations (m ≤ n and m > n), ill-conditioned and rank-deficient terms, and spectra with ties and
// clusters at the rank threshold; rank decisions against the reference rule applied to the dense spectrum.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"
#include "spectrum_test_util.hpp"
#include "reference_rules.hpp"

namespace lorakit {
namespace {

using test::random_matrix;
using test::random_orthonormal;

// spectrum.hpp's claims: σ² exact to ~max(m, n)·ε·‖G_B‖‖G_A‖ (allowed here: 16·max(m, n)·ε·σ₁²), so leading
// values (σ ≥ 1e-3·σ₁) to 1e-11·σ₁, and U, V orthonormal to ~ε·σ₁²/(σᵢσⱼ) (checked on those values).
constexpr double kSquaredError = 16 * std::numeric_limits<double>::epsilon();  // × max(m, n)·σ₁²
constexpr double kLeading = 1e-3;
constexpr double kSigmaAbsolute = 1e-11;  // of σ₁
constexpr double kOrthonormal = 1e-9;
constexpr double kProductRelative = 1e-9;  // of ‖ΔW‖_F

// A term B·A with singular values `s` (B = U·diag(s), A = Vᵀ): its condition is s₁/s_r.
std::pair<MatrixRM, MatrixRM> term_with_spectrum(Eigen::Index m, Eigen::Index n, const Eigen::VectorXd& s,
                                                 std::mt19937_64& rng) {
  const Eigen::Index r = s.size();
  return {random_orthonormal(m, r, rng) * s.asDiagonal(), random_orthonormal(n, r, rng).transpose()};
}

Eigen::VectorXd geometric(Eigen::Index count, double smallest) {  // 1 … smallest
  Eigen::VectorXd v(count);
  for (Eigen::Index i = 0; i < count; ++i) {
    v(i) = std::pow(smallest, count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1));
  }
  return v;
}

// ΔW element by element.
Eigen::MatrixXd dense_delta(const HadamardProduct& p) {
  Eigen::MatrixXd delta(p.rows(), p.cols());
  const Eigen::MatrixXd first = p.B1 * p.A1, second = p.B2 * p.A2;
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    for (Eigen::Index j = 0; j < p.cols(); ++j) delta(i, j) = first(i, j) * second(i, j);
  }
  return delta;
}

struct DenseReference {
  Eigen::VectorXd sigma;
  Eigen::MatrixXd U, V;
};

DenseReference dense_svd(const Eigen::MatrixXd& delta) {
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(delta, Eigen::ComputeThinU | Eigen::ComputeThinV);
  return {svd.singularValues(), svd.matrixU(), svd.matrixV()};
}

// B and A of the identity form hadamard_svd factors ΔW into (see spectrum.hpp).
std::pair<Eigen::MatrixXd, Eigen::MatrixXd> identity_form(const Eigen::MatrixXd& delta) {
  if (delta.rows() <= delta.cols()) return {Eigen::MatrixXd::Identity(delta.rows(), delta.rows()), delta};
  return {delta, Eigen::MatrixXd::Identity(delta.cols(), delta.cols())};
}

void expect_orthonormal_columns(const Eigen::MatrixXd& Q, const char* what) {
  const Eigen::MatrixXd gram = Q.transpose() * Q;
  EXPECT_LE((gram - Eigen::MatrixXd::Identity(Q.cols(), Q.cols())).cwiseAbs().maxCoeff(), kOrthonormal) << what;
}

// σ, orthonormal U and V, and truncations at the optimal (Eckart–Young) distance, against the dense SVD.
void expect_exact(const HadamardProduct& p, const FactoredSvd& svd) {
  const Eigen::MatrixXd delta = dense_delta(p);
  const DenseReference dense = dense_svd(delta);
  const double sigma_1 = dense.sigma(0);
  ASSERT_LE(svd.sigma.size(), dense.sigma.size());
  const double squared_error = kSquaredError * static_cast<double>(std::max(p.rows(), p.cols())) * sigma_1 * sigma_1;
  for (Eigen::Index i = 0; i < dense.sigma.size(); ++i) {
    const double value = i < svd.sigma.size() ? svd.sigma(i) : 0.0;  // dropped values are zeros
    const double reference = dense.sigma(i);
    EXPECT_LE(std::abs(value * value - reference * reference), squared_error) << "singular value " << i;
    if (reference >= kLeading * sigma_1) {
      EXPECT_NEAR(value, reference, kSigmaAbsolute * sigma_1) << "singular value " << i;
    }
  }
  const Eigen::Index d = static_cast<Eigen::Index>(svd.directions());
  if (d == 0) return;
  const auto [B, A] = identity_form(delta);
  ASSERT_EQ(svd.up_transform.rows(), B.cols());
  ASSERT_EQ(svd.down_transform.cols(), A.rows());
  const Eigen::MatrixXd up = B * svd.up_transform, down = svd.down_transform * A;  // U·√Σ, √Σ·Vᵀ
  // The products the planner writes with, from the four factors a block at a time.
  EXPECT_LE((Eigen::MatrixXd(p.up_times(svd.up_transform)) - up).norm(), 1e-12 * up.norm());
  EXPECT_LE((Eigen::MatrixXd(p.times_down(svd.down_transform)) - down).norm(), 1e-12 * down.norm());
  Eigen::Index leading = 0;
  while (leading < d && svd.sigma(leading) >= kLeading * sigma_1) ++leading;
  const Eigen::VectorXd inverse_root = svd.sigma.head(leading).cwiseSqrt().cwiseInverse();
  expect_orthonormal_columns(up.leftCols(leading) * inverse_root.asDiagonal(), "U");
  expect_orthonormal_columns(down.topRows(leading).transpose() * inverse_root.asDiagonal(), "V");
  const double norm = dense.sigma.norm();
  for (const Eigen::Index k : {Eigen::Index{1}, (d + 1) / 2, d}) {
    const double error = (delta - up.leftCols(k) * down.topRows(k)).norm();
    const double optimal = dense.sigma.tail(dense.sigma.size() - k).norm();
    EXPECT_NEAR(error, optimal, kProductRelative * norm) << "rank-" << k << " truncation";
  }
}

HadamardProduct random_loha(Eigen::Index m, Eigen::Index n, Eigen::Index r1, Eigen::Index r2, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return {random_matrix(m, r1, rng), random_matrix(r1, n, rng), random_matrix(m, r2, rng), random_matrix(r2, n, rng)};
}

TEST(HadamardSvd, NarrowInnerDimensionUsesTheFaceSplittingGrams) {  // r1·r2 = 12 < min(m, n) = 30
  const HadamardProduct p = random_loha(30, 45, 3, 4, 1);
  const FactoredSvd svd = hadamard_svd(p);
  EXPECT_EQ(svd.route, SvdRoute::hadamard_gram);
  EXPECT_EQ(svd.rank(), 12u);
  expect_exact(p, svd);
}

TEST(HadamardSvd, TallModuleIsSolvedAsItsTranspose) {  // m > n, r1·r2 = 12 < n
  const HadamardProduct p = random_loha(50, 20, 4, 3, 2);
  const FactoredSvd svd = hadamard_svd(p);
  EXPECT_EQ(svd.route, SvdRoute::hadamard_gram);
  expect_exact(p, svd);
}

TEST(HadamardSvd, InnerDimensionAtLeastTheShortSideUsesTheGramOfDeltaW) {
  for (const auto& [m, n] : {std::pair<Eigen::Index, Eigen::Index>{16, 40}, {40, 16}}) {
    const HadamardProduct p = random_loha(m, n, 5, 4, 3);  // r1·r2 = 20 ≥ 16
    const FactoredSvd svd = hadamard_svd(p);
    EXPECT_EQ(svd.route, SvdRoute::dense_gram) << m << "×" << n;
    EXPECT_EQ(svd.rank(), 16u);
    expect_exact(p, svd);
  }
}

TEST(HadamardSvd, IllConditionedTermsKeepTheGramRoutesExact) {
  // Each term spans 1 … 1e-4 (κ = 1e4): the face-splitting factors are far too ill-conditioned for a
  // Cholesky root whose Q must be orthonormal, but the Grams' product needs no inverse.
  std::mt19937_64 rng(4);
  const auto [B1, A1] = term_with_spectrum(60, 70, geometric(4, 1e-4), rng);
  const auto [B2, A2] = term_with_spectrum(60, 70, geometric(5, 1e-4), rng);
  const HadamardProduct p{B1, A1, B2, A2};
  const FactoredSvd svd = hadamard_svd(p);
  EXPECT_EQ(svd.route, SvdRoute::hadamard_gram);
  expect_exact(p, svd);
}

TEST(HadamardSvd, SquaredTermOfRankFourHasRankTen) {
  // (B·A) ⊙ (B·A): F_A repeats rows (p,q) and (q,p), so G_A is singular; kron(x, x) spans 10 directions.
  std::mt19937_64 rng(5);
  const MatrixRM B = random_matrix(30, 4, rng), A = random_matrix(4, 40, rng);
  const HadamardProduct p{B, A, B, A};
  const FactoredSvd svd = hadamard_svd(p);
  EXPECT_EQ(svd.rank(), 10u);
  expect_exact(p, svd);
}

TEST(HadamardSvd, ZeroTermGivesRankZero) {
  HadamardProduct p = random_loha(20, 30, 3, 3, 6);
  p.A2.setZero();
  std::size_t decided_on = 99;
  const FactoredSvd svd = hadamard_svd(p, [&](const Eigen::VectorXd& sigma) {
    decided_on = static_cast<std::size_t>(sigma.size());
    return std::size_t{4};
  });
  EXPECT_EQ(decided_on, 0u);  // the caller still decides, on an empty spectrum
  EXPECT_EQ(svd.rank(), 0u);
  EXPECT_EQ(svd.directions(), 0u);
}

TEST(HadamardSvd, OnlyTheWantedDirectionsGetTransforms) {
  for (const auto& [m, n, r] : {std::tuple<Eigen::Index, Eigen::Index, Eigen::Index>{40, 60, 4}, {60, 25, 6}}) {
    const HadamardProduct p = random_loha(m, n, r, r, 7);
    const FactoredSvd full = hadamard_svd(p);
    int calls = 0;
    const FactoredSvd svd = hadamard_svd(p, [&](const Eigen::VectorXd& sigma) {
      ++calls;
      EXPECT_EQ(sigma, full.sigma);  // the decision sees the whole spectrum
      return std::size_t{5};
    });
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(svd.rank(), full.rank());
    EXPECT_EQ(svd.directions(), 5u);
    expect_exact(p, svd);
  }
}

// Found by UBSan (the ASan+UBSan suite): the face-splitting route multiplied by an empty matrix of
// eigenvectors when no direction was wanted (a module kept as it is).
TEST(HadamardSvd, NoWantedDirectionGivesTheSpectrumAndEmptyTransforms) {
  for (const auto& [m, n] : {std::pair<Eigen::Index, Eigen::Index>{30, 45}, {45, 30}, {16, 40}}) {
    const HadamardProduct p = random_loha(m, n, 3, 4, 9);
    const FactoredSvd full = hadamard_svd(p);
    const FactoredSvd svd = hadamard_svd(p, [](const Eigen::VectorXd&) { return std::size_t{0}; });
    EXPECT_EQ(svd.route, full.route);
    EXPECT_EQ(svd.sigma, full.sigma);
    EXPECT_EQ(svd.directions(), 0u);
    EXPECT_EQ(svd.up_transform.rows(), full.up_transform.rows());
    EXPECT_EQ(svd.down_transform.cols(), full.down_transform.cols());
  }
}

TEST(HadamardSvd, WantingMoreDirectionsThanTheRankGivesTheRank) {
  const HadamardProduct p = random_loha(20, 30, 2, 3, 8);
  const FactoredSvd svd = hadamard_svd(p, [](const Eigen::VectorXd&) { return std::size_t{100}; });
  EXPECT_EQ(svd.directions(), 6u);
}

// A LoHa whose second term is all ones has ΔW = B1·A1: any spectrum, so ties and clusters can sit exactly
// at a rank rule's threshold.
HadamardProduct loha_with_spectrum(Eigen::Index m, Eigen::Index n, const Eigen::VectorXd& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto [B1, A1] = term_with_spectrum(m, n, s, rng);
  return {std::move(B1), std::move(A1), MatrixRM::Ones(m, 1), MatrixRM::Ones(1, n)};
}

// Our spectrum (padded with zeros to the module's full dimension, as the reference's dense SVD has it)
// and the dense one give the same rank under every dynamic rule.
void expect_same_ranks(const HadamardProduct& p, const std::vector<double>& params) {
  const Eigen::VectorXd dense = dense_svd(dense_delta(p)).sigma;
  Eigen::VectorXd ours = Eigen::VectorXd::Zero(dense.size());
  const Eigen::VectorXd sigma = hadamard_svd(p).sigma;
  ours.head(sigma.size()) = sigma;
  constexpr std::size_t kCap = 1000;
  for (const double param : params) {
    EXPECT_EQ(testsupport::reference_sv_fro_rank(ours, param, kCap),
              testsupport::reference_sv_fro_rank(dense, param, kCap))
        << "sv_fro " << param;
    EXPECT_EQ(testsupport::reference_sv_cumulative_rank(ours, param, kCap),
              testsupport::reference_sv_cumulative_rank(dense, param, kCap))
        << "sv_cumulative " << param;
    EXPECT_EQ(testsupport::reference_sv_ratio_rank(ours, 1.0 / param, kCap),
              testsupport::reference_sv_ratio_rank(dense, 1.0 / param, kCap))
        << "sv_ratio " << 1.0 / param;
  }
}

TEST(HadamardSvd, TiesAtTheThresholdGiveTheReferenceRanks) {
  // σ = 4, 2, 2, 2, 2, 1, 1, 0.5: sv_fro at p² = 0.8 and 0.9 falls inside the tie of 2s and of 1s.
  Eigen::VectorXd s(8);
  s << 4, 2, 2, 2, 2, 1, 1, 0.5;
  expect_same_ranks(loha_with_spectrum(30, 40, s, 9), {std::sqrt(0.8), std::sqrt(0.9), 0.6, 0.75, 0.95});
}

TEST(HadamardSvd, ClusteredSpectrumGivesTheReferenceRanks) {
  // Two clusters 1 ± 1e-9 and 0.1 ± 1e-9 around the sv_fro and sv_cumulative thresholds.
  Eigen::VectorXd s(12);
  for (Eigen::Index i = 0; i < 6; ++i) {
    s(i) = 1.0 - 1e-9 * static_cast<double>(i);
    s(i + 6) = 0.1 - 1e-9 * static_cast<double>(i);
  }
  const HadamardProduct p = loha_with_spectrum(40, 25, s, 10);
  expect_same_ranks(p, {0.3, 0.5, 0.7, 0.99, 0.995});
  expect_exact(p, hadamard_svd(p));
}

TEST(HadamardSvd, RandomLohaModulesGiveTheReferenceRanks) {
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    const Eigen::Index m = 20 + static_cast<Eigen::Index>(seed % 4) * 11, n = 35 - static_cast<Eigen::Index>(seed % 3) * 7;
    const Eigen::Index r = 2 + static_cast<Eigen::Index>(seed % 5);
    expect_same_ranks(random_loha(m, n, r, r + (seed % 2 == 0 ? 0 : 1), 100 + seed), {0.5, 0.8, 0.9, 0.95, 0.99});
  }
}

TEST(HadamardSvd, MismatchedTermsAreRejected) {
  HadamardProduct p = random_loha(10, 12, 2, 3, 11);
  p.B2 = MatrixRM::Ones(11, 3);
  try {
    hadamard_svd(p);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::adapter_shape_mismatch);
  }
}

TEST(HadamardSvd, NonFiniteFactorsAreRejected) {
  for (const bool narrow : {true, false}) {
    HadamardProduct p = random_loha(20, 30, narrow ? 2 : 5, 5, 12);
    p.A1(1, 3) = std::nan("");
    try {
      hadamard_svd(p);
      FAIL() << "expected an error";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::numeric_failure);
    }
  }
}

}  // namespace
}  // namespace lorakit
