#include "plan/stored_factor.hpp"

#include <algorithm>
#include <span>
#include <utility>

#include <fmt/format.h>

#include "lorakit/error.hpp"

#include "plan/module_factors.hpp"

namespace lorakit::detail {
namespace {

// float64 values per decoded block: 256 KiB, so a block stays in L2 while it is used.
constexpr Eigen::Index kBlockValues = Eigen::Index{1} << 15;

std::uint64_t count_nonfinite(const MatrixRM& block) {
  return detail::count_nonfinite(std::span<const double>(block.data(), static_cast<std::size_t>(block.size())));
}

}  // namespace

StoredFactor::StoredFactor(const Reader& reader, const TensorInfo& info)
    : StoredFactor(info.dtype, static_cast<Eigen::Index>(info.shape.empty() ? 1 : info.shape[0]),
                   static_cast<Eigen::Index>(trailing_product(info.shape, 1)), reader.read(info)) {}

StoredFactor::StoredFactor(DType dtype, Eigen::Index rows, Eigen::Index cols, std::vector<std::byte> bytes)
    : dtype_(dtype), rows_(rows), cols_(cols), bytes_(std::move(bytes)) {
  if (bytes_.size() != static_cast<std::size_t>(rows * cols) * (dtype_bits(dtype) / 8)) {
    throw Error(ErrorCode::internal, fmt::format("stored factor: {} bytes for {}×{} {}", bytes_.size(), rows, cols,
                                                 dtype_name(dtype)));
  }
}

Eigen::Index StoredFactor::rows_per_block() const {
  return std::max<Eigen::Index>(1, kBlockValues / std::max<Eigen::Index>(1, cols_));
}
Eigen::Index StoredFactor::cols_per_block() const {
  return std::max<Eigen::Index>(1, kBlockValues / std::max<Eigen::Index>(1, rows_));
}

template <typename Scalar>
void StoredFactor::decode_rows(Eigen::Index first, Eigen::Index count, RowMatrix<Scalar>& block) const {
  block.resize(count, cols_);
  const std::size_t width = dtype_bits(dtype_) / 8;
  const auto values = static_cast<std::size_t>(block.size());
  decode(dtype_, std::span(bytes_).subspan(static_cast<std::size_t>(first * cols_) * width, values * width),
         std::span<Scalar>(block.data(), values));
}

template <typename Scalar>
void StoredFactor::decode_cols(Eigen::Index first, Eigen::Index count, RowMatrix<Scalar>& block) const {
  block.resize(rows_, count);
  const std::size_t width = dtype_bits(dtype_) / 8;
  for (Eigen::Index row = 0; row < rows_; ++row) {
    const auto offset = static_cast<std::size_t>(row * cols_ + first) * width;
    decode(dtype_, std::span(bytes_).subspan(offset, static_cast<std::size_t>(count) * width),
           std::span<Scalar>(block.row(row).data(), static_cast<std::size_t>(count)));
  }
}

template <typename Scalar, typename Use>
void StoredFactor::for_each_block(bool by_rows, Use use) const {
  const Eigen::Index extent = by_rows ? rows_ : cols_;
  const Eigen::Index step = by_rows ? rows_per_block() : cols_per_block();
  RowMatrix<Scalar> block;
  for (Eigen::Index first = 0; first < extent; first += step) {
    const Eigen::Index count = std::min(step, extent - first);
    if (by_rows) {
      decode_rows(first, count, block);
    } else {
      decode_cols(first, count, block);
    }
    use(first, count, block);
  }
}

Eigen::MatrixXd StoredFactor::gram_of_columns(std::uint64_t& nonfinite) const {
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(cols_, cols_);
  for_each_block<double>(true, [&](Eigen::Index, Eigen::Index, const MatrixRM& block) {
    nonfinite += count_nonfinite(block);
    gram.selfadjointView<Eigen::Lower>().rankUpdate(block.transpose());
  });
  return gram;
}

Eigen::MatrixXd StoredFactor::gram_of_rows(std::uint64_t& nonfinite) const {
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(rows_, rows_);
  for_each_block<double>(false, [&](Eigen::Index, Eigen::Index, const MatrixRM& block) {
    nonfinite += count_nonfinite(block);
    gram.selfadjointView<Eigen::Lower>().rankUpdate(block);
  });
  return gram;
}

template <typename Scalar>
RowMatrix<Scalar> StoredFactor::times(const Eigen::MatrixXd& right) const {
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> factor = right.cast<Scalar>();
  RowMatrix<Scalar> out(rows_, right.cols());
  for_each_block<Scalar>(true, [&](Eigen::Index first, Eigen::Index count, const RowMatrix<Scalar>& block) {
    out.middleRows(first, count).noalias() = block * factor;
  });
  return out;
}

template <typename Scalar>
RowMatrix<Scalar> StoredFactor::left_times(const Eigen::MatrixXd& left) const {
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> factor = left.cast<Scalar>();
  RowMatrix<Scalar> out(left.rows(), cols_);
  for_each_block<Scalar>(false, [&](Eigen::Index first, Eigen::Index count, const RowMatrix<Scalar>& block) {
    out.middleCols(first, count).noalias() = factor * block;
  });
  return out;
}

MatrixRM StoredFactor::decoded() const {
  MatrixRM all;
  decode_rows(0, rows_, all);
  return all;
}

template RowMatrix<float> StoredFactor::times<float>(const Eigen::MatrixXd&) const;
template RowMatrix<double> StoredFactor::times<double>(const Eigen::MatrixXd&) const;
template RowMatrix<float> StoredFactor::left_times<float>(const Eigen::MatrixXd&) const;
template RowMatrix<double> StoredFactor::left_times<double>(const Eigen::MatrixXd&) const;

}  // namespace lorakit::detail
