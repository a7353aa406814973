// SVD of a LoHa, (B1·A1) ⊙ (B2·A2), from one symmetric eigenproblem (see hadamard_svd in spectrum.hpp).
//
// Oriented so that m ≤ n (a wider ΔW is handled as its transpose), the left singular vectors U and σ² are
// the eigenpairs of ΔW·ΔWᵀ. That matrix is never formed from F_A when r1·r2 < m: with the face-splitting
// form ΔW = F_B·F_A and G_A = F_A·F_Aᵀ = L·Lᵀ, F_B·L has the same singular values and left vectors as ΔW
// (ΔW = (F_B·L)·Qᵀ with Q = F_Aᵀ·L⁻ᵀ orthonormal), and M = (F_B·L)ᵀ(F_B·L) = Lᵀ·G_B·L gives them as
// U = F_B·L·W·Σ⁻¹ for M = W·Σ²·Wᵀ. Q is never formed, so no inverse of L is needed.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"
#include "spectrum/lapack.hpp"

namespace lorakit {
namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
// Columns of ΔW, or rows of a factor, formed at a time: a few MB for the widest layers.
constexpr Eigen::Index kBlock = 512;

void check_shapes(const HadamardProduct& p) {
  const bool consistent = p.B1.rows() == p.B2.rows() && p.A1.cols() == p.A2.cols() &&
                          p.B1.cols() == p.A1.rows() && p.B2.cols() == p.A2.rows();
  if (!consistent) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("Hadamard product: terms {}×{} · {}×{} and {}×{} · {}×{} do not match", p.B1.rows(),
                            p.B1.cols(), p.A1.rows(), p.A1.cols(), p.B2.rows(), p.B2.cols(), p.A2.rows(),
                            p.A2.cols()));
  }
}

// A NaN or Inf factor entry reaches the diagonal of every Gram built from it.
void check_finite(const Eigen::MatrixXd& gram) {
  if (!gram.diagonal().allFinite()) {
    throw Error(ErrorCode::numeric_failure, "Hadamard product SVD: the factors contain NaN or Inf");
  }
}

// ΔW[:, first, first + count) (column-major, m × count).
Eigen::MatrixXd column_block(const HadamardProduct& p, Eigen::Index first, Eigen::Index count) {
  Eigen::MatrixXd block = p.B1 * p.A1.middleCols(first, count);
  block.array() *= (p.B2 * p.A2.middleCols(first, count)).array();
  return block;
}

template <typename Use>
void for_each_column_block(const HadamardProduct& p, Use use) {
  for (Eigen::Index first = 0; first < p.cols(); first += kBlock) {
    const Eigen::Index count = std::min(kBlock, p.cols() - first);
    use(first, count, column_block(p, first, count));
  }
}

// F_Xᵀ·F_X for F_X = X1 • X2 (row i = kron(X1[i,:], X2[i,:]); X1, X2 column-major, rows are samples).
// Entry ((p,q), (p',q')) = Σᵢ X1[i,p]X1[i,p']·X2[i,q]X2[i,q'] depends only on the unordered pairs {p,p'}
// and {q,q'}: one product of the rows' pair products, r1(r1+1)/2 × r2(r2+1)/2, is half of F_XᵀF_X's work.
Eigen::MatrixXd face_split_gram(const Eigen::MatrixXd& X1, const Eigen::MatrixXd& X2) {
  const Eigen::Index r1 = X1.cols(), r2 = X2.cols(), rows = X1.rows();
  std::vector<Eigen::Index> pair1(static_cast<std::size_t>(r1 * r1)), pair2(static_cast<std::size_t>(r2 * r2));
  auto number_pairs = [](Eigen::Index r, std::vector<Eigen::Index>& index) {
    Eigen::Index next = 0;
    for (Eigen::Index a = 0; a < r; ++a) {
      for (Eigen::Index b = a; b < r; ++b) index[static_cast<std::size_t>(a * r + b)] = index[static_cast<std::size_t>(b * r + a)] = next++;
    }
    return next;
  };
  const Eigen::Index n1 = number_pairs(r1, pair1), n2 = number_pairs(r2, pair2);
  auto pair_products = [](const Eigen::MatrixXd& X, Eigen::Index first, Eigen::Index count, Eigen::Index pairs) {
    Eigen::MatrixXd h(count, pairs);
    Eigen::Index column = 0;
    for (Eigen::Index a = 0; a < X.cols(); ++a) {
      for (Eigen::Index b = a; b < X.cols(); ++b) {
        h.col(column++) = X.col(a).segment(first, count).cwiseProduct(X.col(b).segment(first, count));
      }
    }
    return h;
  };
  Eigen::MatrixXd by_pairs = Eigen::MatrixXd::Zero(n1, n2);
  for (Eigen::Index first = 0; first < rows; first += kBlock) {
    const Eigen::Index count = std::min(kBlock, rows - first);
    by_pairs.noalias() += pair_products(X1, first, count, n1).transpose() * pair_products(X2, first, count, n2);
  }
  Eigen::MatrixXd gram(r1 * r2, r1 * r2);
  for (Eigen::Index p = 0; p < r1; ++p) {
    for (Eigen::Index p2 = 0; p2 < r1; ++p2) {
      const Eigen::Index row = pair1[static_cast<std::size_t>(p * r1 + p2)];
      for (Eigen::Index q = 0; q < r2; ++q) {
        for (Eigen::Index q2 = 0; q2 < r2; ++q2) {
          gram(p * r2 + q, p2 * r2 + q2) = by_pairs(row, pair2[static_cast<std::size_t>(q * r2 + q2)]);
        }
      }
    }
  }
  return gram;
}

// F_B·X for F_B = B1 • B2 (m × r1r2), a block of F_B's rows at a time.
Eigen::MatrixXd face_split_times(const MatrixRM& B1, const MatrixRM& B2, const Eigen::MatrixXd& X) {
  Eigen::MatrixXd result(B1.rows(), X.cols());
  for (Eigen::Index first = 0; first < B1.rows(); first += kBlock) {
    const Eigen::Index count = std::min(kBlock, B1.rows() - first);
    result.middleRows(first, count) =
        face_split_up(B1.middleRows(first, count), B2.middleRows(first, count)) * X;
  }
  return result;
}

// σ = √λ for the eigenvalues above `floor` (descending): the rest are round-off.
Eigen::VectorXd singular_values(const Eigen::VectorXd& eigenvalues, double floor) {
  Eigen::Index rank = 0;
  while (rank < eigenvalues.size() && eigenvalues(rank) > floor) ++rank;
  return eigenvalues.head(rank).cwiseSqrt();
}

Eigen::Index wanted_directions(const Eigen::VectorXd& sigma, const DirectionsWanted& wanted) {
  if (!wanted) return sigma.size();
  return std::min(static_cast<Eigen::Index>(wanted(sigma)), sigma.size());
}

// The identity form B = I_m, A = ΔW from σ and the leading left vectors U (m × d):
// up_transform = U·Σ^{½} is up' itself, and down_transform·ΔW = Σ^{-½}·Uᵀ·ΔW = Σ^{½}·Vᵀ.
FactoredSvd identity_form(Eigen::VectorXd sigma, const Eigen::MatrixXd& U, SvdRoute route) {
  const Eigen::VectorXd root = sigma.head(U.cols()).cwiseSqrt();
  FactoredSvd result;
  result.route = route;
  result.sigma = std::move(sigma);
  result.up_transform = U * root.asDiagonal();
  result.down_transform = root.cwiseInverse().asDiagonal() * U.transpose();
  return result;
}

FactoredSvd empty_form(Eigen::Index rows, SvdRoute route, const DirectionsWanted& wanted) {
  FactoredSvd result = identity_form(Eigen::VectorXd(0), Eigen::MatrixXd(rows, 0), route);
  wanted_directions(result.sigma, wanted);  // the caller decides on an empty spectrum too
  return result;
}

// Round-off floor of σ² for an eigenproblem whose entries are exact to ~ε·`scale`.
double eigenvalue_floor(const HadamardProduct& p, double scale) {
  return static_cast<double>(std::max(p.rows(), p.cols())) * kEpsilon * scale;
}

// r1·r2 < m ≤ n: the eigenproblem of M = Lᵀ·G_B·L (see the top of the file); empty when G_A is singular.
std::optional<FactoredSvd> hadamard_gram_route(const HadamardProduct& p, const DirectionsWanted& wanted) {
  const Eigen::MatrixXd gram_a = face_split_gram(p.A1.transpose(), p.A2.transpose());
  Eigen::MatrixXd gram_b = face_split_gram(p.B1, p.B2);
  check_finite(gram_a);
  check_finite(gram_b);
  // ‖G_B‖₂‖G_A‖₂ ≤ this, and M's entries are exact to ~ε times it.
  const double scale = gram_b.norm() * gram_a.norm();
  Eigen::MatrixXd root = gram_a;
  if (!detail::cholesky_in_place(root)) return std::nullopt;
  root.triangularView<Eigen::StrictlyUpper>().setZero();  // dpotrf leaves G_A's upper triangle there
  detail::congruence_in_place(gram_b, root);
  const detail::TridiagonalEigen eigen(std::move(gram_b));
  Eigen::VectorXd sigma = singular_values(eigen.values(), eigenvalue_floor(p, scale));
  const Eigen::Index d = wanted_directions(sigma, wanted);
  if (d == 0) {  // Eigen's triangular product is undefined on an empty operand (UBSan)
    return identity_form(std::move(sigma), Eigen::MatrixXd(p.rows(), 0), SvdRoute::hadamard_gram);
  }
  Eigen::MatrixXd U = face_split_times(p.B1, p.B2, root.triangularView<Eigen::Lower>() * eigen.leading_vectors(d));
  U *= sigma.head(d).cwiseInverse().asDiagonal();
  return identity_form(std::move(sigma), U, SvdRoute::hadamard_gram);
}

// m ≤ n: the eigenproblem of ΔW·ΔWᵀ itself.
FactoredSvd dense_gram_route(const HadamardProduct& p, const DirectionsWanted& wanted) {
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(p.rows(), p.rows());
  for_each_column_block(p, [&](Eigen::Index, Eigen::Index, const Eigen::MatrixXd& block) {
    detail::add_gram_of_rows(gram, block);
  });
  check_finite(gram);
  const detail::TridiagonalEigen eigen(std::move(gram));
  // The Gram's entries are exact to ~ε·‖ΔW‖₂² = ε·λ₁.
  const double scale = std::max(eigen.values()(0), 0.0);
  Eigen::VectorXd sigma = singular_values(eigen.values(), eigenvalue_floor(p, scale));
  const Eigen::Index d = wanted_directions(sigma, wanted);
  return identity_form(std::move(sigma), eigen.leading_vectors(d), SvdRoute::dense_gram);
}

FactoredSvd oriented_svd(const HadamardProduct& p, const DirectionsWanted& wanted) {
  if (p.rows() == 0 || p.cols() == 0 || p.inner() == 0) return empty_form(p.rows(), SvdRoute::dense_gram, wanted);
  if (p.inner() < p.rows()) {
    if (auto result = hadamard_gram_route(p, wanted)) return std::move(*result);
  }
  return dense_gram_route(p, wanted);
}

}  // namespace

MatrixRM HadamardProduct::up_times(const Eigen::MatrixXd& up_transform) const {
  if (identity_up()) return up_transform;
  MatrixRM result = MatrixRM::Zero(rows(), up_transform.cols());
  for_each_column_block(*this, [&](Eigen::Index first, Eigen::Index count, const Eigen::MatrixXd& block) {
    result.noalias() += block * up_transform.middleRows(first, count);
  });
  return result;
}

MatrixRM HadamardProduct::times_down(const Eigen::MatrixXd& down_transform) const {
  if (!identity_up()) return down_transform;
  MatrixRM result(down_transform.rows(), cols());
  for_each_column_block(*this, [&](Eigen::Index first, Eigen::Index count, const Eigen::MatrixXd& block) {
    result.middleCols(first, count).noalias() = down_transform * block;
  });
  return result;
}

HadamardProduct HadamardProduct::transposed() const {
  return {A1.transpose(), B1.transpose(), A2.transpose(), B2.transpose()};
}

FactoredSvd hadamard_svd(const HadamardProduct& product, const DirectionsWanted& wanted) {
  check_shapes(product);
  if (product.identity_up()) return oriented_svd(product, wanted);
  FactoredSvd transposed = oriented_svd(product.transposed(), wanted);
  FactoredSvd result;
  result.route = transposed.route;
  result.sigma = std::move(transposed.sigma);
  result.up_transform = transposed.down_transform.transpose();
  result.down_transform = transposed.up_transform.transpose();
  return result;
}

}  // namespace lorakit
