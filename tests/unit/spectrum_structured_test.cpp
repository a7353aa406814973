// Tucker folds, face-splitting products, explicit and Kronecker SVDs against independent references:
// explicit index contractions written out with loops, Hadamard / Kronecker products built element by
// element, and Eigen's JacobiSVD of the dense matrix in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/SVD>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"
#include "spectrum_test_util.hpp"

namespace lorakit {
namespace {

using test::random_matrix;

constexpr double kRelative = 1e-12;  // exact rearrangements and well-conditioned SVDs (a few ε·dims)

double relative_difference(const Eigen::MatrixXd& x, const Eigen::MatrixXd& reference) {
  return (x - reference).norm() / reference.norm();
}

Eigen::VectorXd dense_sigma(const Eigen::MatrixXd& W) {
  return Eigen::JacobiSVD<Eigen::MatrixXd>(W).singularValues();
}

// Error of the best rank-k approximation (Eckart–Young): √(Σ_{t≥k} σ_t²).
double best_error(const Eigen::VectorXd& sigma, Eigen::Index k) {
  return sigma.tail(sigma.size() - k).norm();
}

void expect_orthonormal_columns(const Eigen::MatrixXd& Q) {
  const Eigen::MatrixXd gram = Q.transpose() * Q;
  EXPECT_LE((gram - Eigen::MatrixXd::Identity(Q.cols(), Q.cols())).cwiseAbs().maxCoeff(), 1e-12);
}

// ---- Tucker fold (MATH.md §3) ---------------------------------------------------------------------

struct TuckerCase {
  Eigen::Index out, r_a, r_b, in, kernel;  // kernel = kh·kw[·kt]
};

// ΔW[o, i·K + s] = Σ_{a,b} up[o,a] · mid[a,b,s] · down[b,i], written out index by index.
MatrixRM tucker_delta(const MatrixRM& up, const MatrixRM& mid_flat, const MatrixRM& down,
                      const TuckerCase& c) {
  MatrixRM delta = MatrixRM::Zero(c.out, c.in * c.kernel);
  for (Eigen::Index o = 0; o < c.out; ++o)
    for (Eigen::Index i = 0; i < c.in; ++i)
      for (Eigen::Index s = 0; s < c.kernel; ++s)
        for (Eigen::Index a = 0; a < c.r_a; ++a)
          for (Eigen::Index b = 0; b < c.r_b; ++b)
            delta(o, i * c.kernel + s) += up(o, a) * mid_flat(a, b * c.kernel + s) * down(b, i);
  return delta;
}

void check_fold(const TuckerCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const MatrixRM up = random_matrix(c.out, c.r_a, rng);
  const MatrixRM mid = random_matrix(c.r_a, c.r_b * c.kernel, rng);  // (r_a, r_b, kh, kw[, kt]) row-major
  const MatrixRM down = random_matrix(c.r_b, c.in, rng);
  const MatrixRM folded = fold_tucker(mid, static_cast<std::size_t>(c.r_b), down);
  ASSERT_EQ(folded.rows(), c.r_a);
  ASSERT_EQ(folded.cols(), c.in * c.kernel);
  for (Eigen::Index a = 0; a < c.r_a; ++a) {
    for (Eigen::Index i = 0; i < c.in; ++i) {
      for (Eigen::Index s = 0; s < c.kernel; ++s) {
        double expected = 0.0;
        for (Eigen::Index b = 0; b < c.r_b; ++b) expected += mid(a, b * c.kernel + s) * down(b, i);
        EXPECT_NEAR(folded(a, i * c.kernel + s), expected, 1e-12) << a << ',' << i << ',' << s;
      }
    }
  }
  // A plain conv LoRA with this down computes the Tucker module's ΔW.
  EXPECT_LE(relative_difference(up * folded, tucker_delta(up, mid, down, c)), kRelative);
}

TEST(FoldTucker, Conv3x3MatchesTheFourIndexContraction) { check_fold({7, 4, 4, 5, 9}, 1); }
TEST(FoldTucker, Conv3dAndUnequalCoreRanks) { check_fold({6, 3, 5, 4, 27}, 2); }
TEST(FoldTucker, OneByOneKernel) { check_fold({5, 2, 3, 6, 1}, 3); }

TEST(FoldTucker, MismatchedShapesAreRejected) {
  std::mt19937_64 rng(4);
  try {
    fold_tucker(random_matrix(3, 4 * 9, rng), 4, random_matrix(5, 6, rng));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::adapter_shape_mismatch);
  }
  EXPECT_THROW(fold_tucker(random_matrix(3, 10, rng), 4, random_matrix(4, 6, rng)), Error);  // 10 % 4 ≠ 0
}

// ---- Face-splitting products (MATH.md §4) ---------------------------------------------------------

TEST(FaceSplit, LayoutIsRowWiseKronecker) {
  std::mt19937_64 rng(5);
  const MatrixRM B1 = random_matrix(4, 2, rng), B2 = random_matrix(4, 3, rng);
  const MatrixRM A1 = random_matrix(2, 5, rng), A2 = random_matrix(3, 5, rng);
  const MatrixRM up = face_split_up(B1, B2);
  const MatrixRM down = face_split_down(A1, A2);
  ASSERT_EQ(up.rows(), 4);
  ASSERT_EQ(up.cols(), 6);
  ASSERT_EQ(down.rows(), 6);
  ASSERT_EQ(down.cols(), 5);
  for (Eigen::Index p = 0; p < 2; ++p) {
    for (Eigen::Index q = 0; q < 3; ++q) {
      for (Eigen::Index i = 0; i < 4; ++i) EXPECT_EQ(up(i, p * 3 + q), B1(i, p) * B2(i, q));
      for (Eigen::Index j = 0; j < 5; ++j) EXPECT_EQ(down(p * 3 + q, j), A1(p, j) * A2(q, j));
    }
  }
}

TEST(FaceSplit, ProductIsTheHadamardOfTheTwoTerms) {
  std::mt19937_64 rng(6);
  const MatrixRM B1 = random_matrix(30, 3, rng), A1 = random_matrix(3, 40, rng);
  const MatrixRM B2 = random_matrix(30, 4, rng), A2 = random_matrix(4, 40, rng);
  const Eigen::MatrixXd hadamard = (B1 * A1).cwiseProduct(B2 * A2);
  const Eigen::MatrixXd product = face_split_up(B1, B2) * face_split_down(A1, A2);
  EXPECT_LE(relative_difference(product, hadamard), kRelative);
}

TEST(FaceSplit, SquaredTermOfRankFourHasRankTen) {
  // (B·A) ⊙ (B·A) with r = 4: inner dim 16, but kron(x, x) spans only the 10 symmetric directions.
  std::mt19937_64 rng(7);
  const MatrixRM B = random_matrix(30, 4, rng), A = random_matrix(4, 40, rng);
  const MatrixRM up = face_split_up(B, B), down = face_split_down(A, A);
  const FactoredSvd svd = factored_svd(up, down);
  const Eigen::MatrixXd hadamard = (B * A).cwiseProduct(B * A);
  const Eigen::VectorXd reference = dense_sigma(hadamard);
  ASSERT_EQ(svd.rank(), 10u);
  EXPECT_LT(reference(10), 1e-12 * reference(0));
  for (Eigen::Index i = 0; i < 10; ++i) EXPECT_NEAR(svd.sigma(i), reference(i), 1e-9 * reference(i));
}

TEST(FaceSplit, MismatchedShapesAreRejected) {
  std::mt19937_64 rng(8);
  EXPECT_THROW(face_split_up(random_matrix(4, 2, rng), random_matrix(5, 2, rng)), Error);
  EXPECT_THROW(face_split_down(random_matrix(2, 4, rng), random_matrix(2, 5, rng)), Error);
}

// ---- Explicit SVDs -------------------------------------------------------------------------------

void expect_explicit_svd_of(const ExplicitSvd& svd, const Eigen::MatrixXd& W) {
  const Eigen::VectorXd reference = dense_sigma(W);
  const Eigen::Index rank = svd.sigma.size();
  ASSERT_EQ(svd.U.cols(), rank);
  ASSERT_EQ(svd.V.cols(), rank);
  for (Eigen::Index i = 0; i < rank; ++i) EXPECT_NEAR(svd.sigma(i), reference(i), 1e-10 * reference(0));
  for (Eigen::Index i = rank; i < reference.size(); ++i) EXPECT_LT(reference(i), 1e-12 * reference(0));
  expect_orthonormal_columns(svd.U);
  expect_orthonormal_columns(svd.V);
  const Eigen::MatrixXd rebuilt = svd.U * svd.sigma.asDiagonal() * svd.V.transpose();
  EXPECT_LE(relative_difference(rebuilt, W), 1e-12);
}

TEST(ExplicitSvd, DenseFactor) {
  std::mt19937_64 rng(9);
  const MatrixRM W = random_matrix(6, 9, rng);
  const ExplicitSvd svd = explicit_svd(W);
  EXPECT_EQ(svd.sigma.size(), 6);
  expect_explicit_svd_of(svd, W);
}

TEST(ExplicitSvd, DenseRankTwoFactorKeepsTwoDirections) {
  std::mt19937_64 rng(10);
  const MatrixRM W = random_matrix(7, 2, rng) * random_matrix(2, 5, rng);
  const ExplicitSvd svd = explicit_svd(W);
  EXPECT_EQ(svd.sigma.size(), 2);
  expect_explicit_svd_of(svd, W);
}

TEST(ExplicitSvd, ZeroFactorHasNoDirections) {
  const ExplicitSvd svd = explicit_svd(MatrixRM::Zero(4, 3));
  EXPECT_EQ(svd.sigma.size(), 0);
  EXPECT_EQ(svd.U.rows(), 4);
  EXPECT_EQ(svd.V.rows(), 3);
}

TEST(ExplicitSvd, DecomposedFactorFromFactorSpace) {
  std::mt19937_64 rng(11);
  const MatrixRM B = random_matrix(12, 3, rng), A = random_matrix(3, 10, rng);
  const ExplicitSvd svd = explicit_svd(B, A);
  EXPECT_EQ(svd.sigma.size(), 3);
  expect_explicit_svd_of(svd, B * A);
}

// ---- Kronecker products (MATH.md §5) -------------------------------------------------------------

// kron(W1, W2)[p·b + q, s·d + t] = W1[p,s]·W2[q,t].
Eigen::MatrixXd explicit_kron(const MatrixRM& W1, const MatrixRM& W2) {
  Eigen::MatrixXd K(W1.rows() * W2.rows(), W1.cols() * W2.cols());
  for (Eigen::Index p = 0; p < W1.rows(); ++p)
    for (Eigen::Index s = 0; s < W1.cols(); ++s)
      for (Eigen::Index q = 0; q < W2.rows(); ++q)
        for (Eigen::Index t = 0; t < W2.cols(); ++t)
          K(p * W2.rows() + q, s * W2.cols() + t) = W1(p, s) * W2(q, t);
  return K;
}

TEST(KronSvd, SingularValuesAreAllProductsInDescendingOrder) {
  std::mt19937_64 rng(12);
  const MatrixRM W1 = random_matrix(3, 4, rng), W2 = random_matrix(4, 5, rng);
  const KronSvd svd = kron_svd(explicit_svd(W1), explicit_svd(W2));
  const Eigen::VectorXd reference = dense_sigma(explicit_kron(W1, W2));
  ASSERT_EQ(svd.sigma.size(), 12);  // 3·4 products, = min(12, 20)
  ASSERT_EQ(svd.pairs.size(), 12u);
  for (Eigen::Index t = 0; t < 12; ++t) {
    EXPECT_NEAR(svd.sigma(t), reference(t), 1e-10 * reference(0));
    const auto [i, j] = svd.pairs[static_cast<std::size_t>(t)];
    const double sigma1 = svd.w1.sigma(static_cast<Eigen::Index>(i));
    const double sigma2 = svd.w2.sigma(static_cast<Eigen::Index>(j));
    EXPECT_EQ(svd.sigma(t), sigma1 * sigma2);
  }
}

ExplicitSvd diagonal_svd(std::vector<double> sigma) {  // W = diag(σ): U = V = I
  const auto n = static_cast<Eigen::Index>(sigma.size());
  return {Eigen::Map<Eigen::VectorXd>(sigma.data(), n), MatrixRM::Identity(n, n), MatrixRM::Identity(n, n)};
}

TEST(KronSvd, TiesAreOrderedByPair) {
  // σ1 = (2, 1), σ2 = (2, 1): products 4 (0,0), 2 (0,1), 2 (1,0), 1 (1,1); the tie keeps (0,1) first.
  const KronSvd svd = kron_svd(diagonal_svd({2, 1}), diagonal_svd({2, 1}));
  const std::vector<std::pair<std::size_t, std::size_t>> expected{{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  EXPECT_EQ(svd.pairs, expected);
  EXPECT_EQ(svd.sigma, Eigen::Vector4d(4, 2, 2, 1));
  // All equal: plain (i, j) order.
  const KronSvd flat = kron_svd(diagonal_svd({1, 1}), diagonal_svd({1, 1, 1}));
  const std::vector<std::pair<std::size_t, std::size_t>> row_major{
      {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}};
  EXPECT_EQ(flat.pairs, row_major);
}

void expect_best_truncations(const KronSvd& svd, const Eigen::MatrixXd& K) {
  const Eigen::VectorXd reference = dense_sigma(K);
  const double norm = reference.norm();
  for (const Eigen::Index k : {Eigen::Index{1}, Eigen::Index{3}, svd.sigma.size()}) {
    const auto [up, down] = kron_truncate(svd, static_cast<std::size_t>(k));
    ASSERT_EQ(up.rows(), K.rows());
    ASSERT_EQ(up.cols(), k);
    ASSERT_EQ(down.rows(), k);
    ASSERT_EQ(down.cols(), K.cols());
    const double error = (K - up * down).norm();
    EXPECT_NEAR(error, best_error(reference, k), 1e-10 * norm) << "rank " << k;  // Eckart–Young optimum
    for (Eigen::Index t = 0; t < k; ++t) {  // √σ on each side
      EXPECT_NEAR(up.col(t).norm(), std::sqrt(svd.sigma(t)), 1e-12 * std::sqrt(svd.sigma(t)));
      EXPECT_NEAR(down.row(t).norm(), std::sqrt(svd.sigma(t)), 1e-12 * std::sqrt(svd.sigma(t)));
    }
  }
}

TEST(KronTruncate, LinearFullFactorsGiveTheBestTruncation) {
  std::mt19937_64 rng(13);
  const MatrixRM W1 = random_matrix(3, 4, rng), W2 = random_matrix(5, 6, rng);
  const KronSvd svd = kron_svd(explicit_svd(W1), explicit_svd(W2));
  expect_best_truncations(svd, explicit_kron(W1, W2));
}

TEST(KronTruncate, DecomposedSecondFactor) {
  std::mt19937_64 rng(14);
  const MatrixRM W1 = random_matrix(4, 4, rng);
  const MatrixRM B2 = random_matrix(6, 2, rng), A2 = random_matrix(2, 8, rng);
  const KronSvd svd = kron_svd(explicit_svd(W1), explicit_svd(B2, A2));
  EXPECT_EQ(svd.sigma.size(), 8);  // 4 · rank 2
  expect_best_truncations(svd, explicit_kron(W1, B2 * A2));
}

TEST(KronTruncate, ConvFactorFlattenedAsTheModuleWeight) {
  // w1 (a=2, c=3), w2 (b=2, d=3, kh=3, kw=3): ΔW (a·b, c·d, kh, kw) with
  // ΔW[p·b + q, s·d + t, y, x] = w1[p, s] · w2[q, t, y, x], flattened to (a·b) × (c·d·9).
  std::mt19937_64 rng(15);
  const MatrixRM W1 = random_matrix(2, 3, rng);
  const MatrixRM W2 = random_matrix(2, 3 * 9, rng);  // (b, d, kh, kw) row-major
  Eigen::MatrixXd delta(4, 3 * 3 * 9);
  for (Eigen::Index p = 0; p < 2; ++p)
    for (Eigen::Index q = 0; q < 2; ++q)
      for (Eigen::Index s = 0; s < 3; ++s)
        for (Eigen::Index t = 0; t < 3; ++t)
          for (Eigen::Index yx = 0; yx < 9; ++yx)
            delta(p * 2 + q, (s * 3 + t) * 9 + yx) = W1(p, s) * W2(q, t * 9 + yx);
  const KronSvd svd = kron_svd(explicit_svd(W1), explicit_svd(W2));
  const auto [up, down] = kron_truncate(svd, svd.sigma.size());
  EXPECT_LE(relative_difference(up * down, delta), kRelative);
  expect_best_truncations(svd, delta);
}

TEST(KronTruncate, RankBeyondTheSpectrumGivesAllDirections) {
  const KronSvd svd = kron_svd(diagonal_svd({3, 1}), diagonal_svd({2}));
  const auto [up, down] = kron_truncate(svd, 10);
  EXPECT_EQ(up.cols(), 2);
  EXPECT_EQ(down.rows(), 2);
}

}  // namespace
}  // namespace lorakit
