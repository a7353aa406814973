#include "spectrum/lapack.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include <cblas.h>
#include <fmt/format.h>
#include <lapacke.h>

#include "lorakit/error.hpp"

namespace lorakit::detail {
namespace {

// OpenBLAS's own threads off: each call runs on the calling worker, since modules already run in parallel.
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

lapack_int dim(Eigen::Index n) { return static_cast<lapack_int>(n); }

void check(lapack_int info, const char* routine) {
  if (info < 0) throw Error(ErrorCode::internal, fmt::format("{}: argument {} is invalid", routine, -info));
  if (info > 0) throw Error(ErrorCode::numeric_failure, fmt::format("{} did not converge (info {})", routine, info));
}

}  // namespace

void add_gram_of_rows(Eigen::MatrixXd& S, const Eigen::MatrixXd& X) {
  single_threaded_blas();
  if (X.cols() == 0 || S.rows() == 0) return;
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, dim(S.rows()), dim(X.cols()), 1.0, X.data(),
              dim(X.rows()), 1.0, S.data(), dim(S.rows()));
}

bool cholesky_in_place(Eigen::MatrixXd& G) {
  single_threaded_blas();
  const lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', dim(G.rows()), G.data(), dim(G.rows()));
  if (info < 0) check(info, "dpotrf");
  return info == 0;
}

void congruence_in_place(Eigen::MatrixXd& A, const Eigen::MatrixXd& L) {
  single_threaded_blas();
  check(LAPACKE_dsygst(LAPACK_COL_MAJOR, 2, 'L', dim(A.rows()), A.data(), dim(A.rows()), L.data(), dim(L.rows())),
        "dsygst");
}

ThinSvd thin_svd(Eigen::MatrixXd A) {
  single_threaded_blas();
  const Eigen::Index rows = A.rows(), cols = A.cols(), p = std::min(rows, cols);
  ThinSvd svd{Eigen::VectorXd(p), Eigen::MatrixXd(rows, p), Eigen::MatrixXd(p, cols)};
  if (p == 0) return svd;
  check(LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', dim(rows), dim(cols), A.data(), dim(rows), svd.sigma.data(),
                       svd.U.data(), dim(rows), svd.V.data(), dim(p)),
        "dgesdd");
  svd.V.transposeInPlace();  // dgesdd returns Vᵀ
  return svd;
}

TridiagonalEigen::TridiagonalEigen(Eigen::MatrixXd symmetric_lower) : reflectors_(std::move(symmetric_lower)) {
  single_threaded_blas();
  const Eigen::Index n = reflectors_.rows();
  diagonal_.resize(n);
  off_diagonal_.resize(n);  // dstemr needs n entries (the last is workspace)
  tau_.resize(std::max<Eigen::Index>(n - 1, 1));
  if (n == 0) return;
  check(LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', dim(n), reflectors_.data(), dim(n), diagonal_.data(),
                       off_diagonal_.data(), tau_.data()),
        "dsytrd");
  Eigen::VectorXd d = diagonal_, e = off_diagonal_;
  check(LAPACKE_dsterf(dim(n), d.data(), e.data()), "dsterf");
  values_ = d.reverse();  // dsterf sorts ascending
}

Eigen::MatrixXd TridiagonalEigen::leading_vectors(Eigen::Index count) const {
  const Eigen::Index n = reflectors_.rows();
  Eigen::MatrixXd vectors(n, count);
  if (count == 0) return vectors;
  Eigen::VectorXd d = diagonal_, e = off_diagonal_, w(n);
  std::vector<lapack_int> support(static_cast<std::size_t>(2 * count));
  lapack_int found = 0;
  lapack_logical relative_accuracy = 1;
  // The `count` largest, as indices n − count + 1 … n of the ascending order.
  check(LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', dim(n), d.data(), e.data(), 0.0, 0.0, dim(n - count + 1), dim(n),
                       &found, w.data(), vectors.data(), dim(n), dim(count), support.data(), &relative_accuracy),
        "dstemr");
  if (found != count) {
    throw Error(ErrorCode::numeric_failure, fmt::format("dstemr found {} of {} eigenvectors", found, count));
  }
  check(LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', dim(n), dim(count), reflectors_.data(), dim(n), tau_.data(),
                       vectors.data(), dim(n)),
        "dormtr");
  return vectors.rowwise().reverse();  // columns in descending order of their values
}

}  // namespace lorakit::detail
