// Rewriting Tucker cores and Hadamard products as plain LoRA factors (MATH.md §3, §4).
#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "lorakit/spectrum.hpp"

namespace lorakit {

MatrixRM fold_tucker(const MatrixRM& mid_flat, std::size_t r_b, const MatrixRM& down) {
  const Eigen::Index inner = static_cast<Eigen::Index>(r_b);
  if (inner == 0 || mid_flat.cols() % inner != 0 || down.rows() != inner) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("Tucker fold: mid is {}×{} (expected r_a × {}·K) but down is {}×{}",
                            mid_flat.rows(), mid_flat.cols(), r_b, down.rows(), down.cols()));
  }
  const Eigen::Index r_a = mid_flat.rows();
  const Eigen::Index kernel = mid_flat.cols() / inner;
  const Eigen::Index in = down.cols();

  // Row (a, s) of `by_position` is mid[a, :, s]; one GEMM gives product[(a, s), i] = down'[a, i·K + s].
  MatrixRM by_position(r_a * kernel, inner);
  for (Eigen::Index a = 0; a < r_a; ++a) {
    // mid[a, b, s] sits at column b·K + s: viewed as r_b × K, its transpose is K × r_b.
    const Eigen::Map<const MatrixRM> core(mid_flat.row(a).data(), inner, kernel);
    by_position.middleRows(a * kernel, kernel) = core.transpose();
  }
  const MatrixRM product = by_position * down;

  MatrixRM folded(r_a, in * kernel);
  for (Eigen::Index a = 0; a < r_a; ++a) {
    // Per a, product is K × in (row s, column i); down' row a is that block transposed, flattened as (i, s).
    Eigen::Map<MatrixRM>(folded.row(a).data(), in, kernel) =
        product.middleRows(a * kernel, kernel).transpose();
  }
  return folded;
}

MatrixRM face_split_up(const MatrixRM& B1, const MatrixRM& B2) {
  if (B1.rows() != B2.rows()) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("face-splitting product: up factors have {} and {} rows", B1.rows(), B2.rows()));
  }
  const Eigen::Index r2 = B2.cols();
  MatrixRM up(B1.rows(), B1.cols() * r2);
  for (Eigen::Index p = 0; p < B1.cols(); ++p) {
    up.middleCols(p * r2, r2) = B2.array().colwise() * B1.col(p).array();
  }
  return up;
}

MatrixRM face_split_down(const MatrixRM& A1, const MatrixRM& A2) {
  if (A1.cols() != A2.cols()) {
    throw Error(ErrorCode::adapter_shape_mismatch,
                fmt::format("face-splitting product: down factors have {} and {} columns", A1.cols(),
                            A2.cols()));
  }
  const Eigen::Index r2 = A2.rows();
  MatrixRM down(A1.rows() * r2, A1.cols());
  for (Eigen::Index p = 0; p < A1.rows(); ++p) {
    down.middleRows(p * r2, r2) = A2.array().rowwise() * A1.row(p).array();
  }
  return down;
}

}  // namespace lorakit
