#pragma once
// The few LAPACK/BLAS calls (OpenBLAS, LAPACKE) the wide-product routes need, on column-major Eigen
// matrices. Each runs on the calling thread: callers parallelise across modules.
#include <Eigen/Core>

namespace lorakit::detail {

// S += X·Xᵀ (X: S.rows() × k), lower triangle of S only (dsyrk).
void add_gram_of_rows(Eigen::MatrixXd& S, const Eigen::MatrixXd& X);

// G = L·Lᵀ in place, lower triangle (dpotrf); false when G is not positive definite to round-off.
bool cholesky_in_place(Eigen::MatrixXd& G);

// A ← Lᵀ·A·L for symmetric A (lower triangle) and lower-triangular L (dsygst, itype 2): the congruence
// whose eigenvalues are those of A·L·Lᵀ, formed with products only (no inverse of L).
void congruence_in_place(Eigen::MatrixXd& A, const Eigen::MatrixXd& L);

// Thin SVD A = U·diag(σ)·Vᵀ (dgesdd, divide and conquer): σ descending, U rows × p, V cols × p,
// p = min(rows, cols).
struct ThinSvd {
  Eigen::VectorXd sigma;
  Eigen::MatrixXd U, V;
};
ThinSvd thin_svd(Eigen::MatrixXd A);

// A symmetric matrix reduced once to tridiagonal form (dsytrd, Householder: backward stable), then all of
// its eigenvalues (dsterf) and, on request, eigenvectors of the largest ones only (dstemr on the
// tridiagonal, then the reflectors applied to those vectors alone: dormtr).
class TridiagonalEigen {
 public:
  explicit TridiagonalEigen(Eigen::MatrixXd symmetric_lower);
  const Eigen::VectorXd& values() const { return values_; }  // all N, descending
  // N × count: unit eigenvectors of values()[0..count), in that order.
  Eigen::MatrixXd leading_vectors(Eigen::Index count) const;

 private:
  Eigen::MatrixXd reflectors_;
  Eigen::VectorXd diagonal_, off_diagonal_, tau_, values_;
};

}  // namespace lorakit::detail
