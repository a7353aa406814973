#pragma once
// A plain LoRA factor kept as stored (fp16/bf16: ¼ of float64) and decoded one cache-sized block at a
// time inside each product it takes part in. Pass 1 thus reads each factor once and never writes a
// float64 copy of it: the Grams, the non-finite count and the resized factors each take one pass over
// the stored bytes, and a module's memory is its stored size.
#include <cstdint>
#include <vector>

#include "lorakit/dtype.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/spectrum.hpp"

namespace lorakit::detail {

template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class StoredFactor {
 public:
  StoredFactor() = default;
  // The tensor as (shape[0]) × (product of the rest), as read_rows shapes it.
  StoredFactor(const Reader& reader, const TensorInfo& info);
  // rows × cols values of a float dtype, row-major little-endian.
  StoredFactor(DType dtype, Eigen::Index rows, Eigen::Index cols, std::vector<std::byte> bytes);

  Eigen::Index rows() const { return rows_; }
  Eigen::Index cols() const { return cols_; }
  bool empty() const { return bytes_.empty(); }

  // FᵀF (for up) or F·Fᵀ (for down) in float64, lower triangle; adds the factor's NaN/Inf count.
  Eigen::MatrixXd gram_of_columns(std::uint64_t& nonfinite) const;
  Eigen::MatrixXd gram_of_rows(std::uint64_t& nonfinite) const;
  // F · right and left · F, computed in Scalar (float: for factors written in 16 bits, whose rounding
  // is 1e3× coarser than a float32 product's error; half the float64 cost).
  template <typename Scalar>
  RowMatrix<Scalar> times(const Eigen::MatrixXd& right) const;
  template <typename Scalar>
  RowMatrix<Scalar> left_times(const Eigen::MatrixXd& left) const;
  MatrixRM decoded() const;  // all of F in float64

 private:
  // Decodes rows [first, first + count), or columns [first, first + count) of every row, into `block`.
  template <typename Scalar>
  void decode_rows(Eigen::Index first, Eigen::Index count, RowMatrix<Scalar>& block) const;
  template <typename Scalar>
  void decode_cols(Eigen::Index first, Eigen::Index count, RowMatrix<Scalar>& block) const;
  // Calls use(first, count, block) for each block of rows (by_rows) or of columns, decoded in Scalar.
  template <typename Scalar, typename Use>
  void for_each_block(bool by_rows, Use use) const;
  Eigen::Index rows_per_block() const;
  Eigen::Index cols_per_block() const;

  DType dtype_ = DType::F32;
  Eigen::Index rows_ = 0;
  Eigen::Index cols_ = 0;
  std::vector<std::byte> bytes_;
};

}  // namespace lorakit::detail
