// StoredFactor's blocked products against Eigen on the same values decoded independently (Eigen::half /
// Eigen::bfloat16), with shapes that split into several blocks and leave a remainder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <vector>

#include <Eigen/Core>

#include "lorakit/error.hpp"
#include "plan/stored_factor.hpp"

namespace lorakit::detail {
namespace {

struct Stored {
  StoredFactor factor;
  Eigen::MatrixXd values;  // what the stored bytes hold, in float64
};

// Random values rounded to `dtype`, stored row-major; `poison` entries become NaN, -Inf, NaN, ...
Stored make_stored(DType dtype, Eigen::Index rows, Eigen::Index cols, unsigned seed, int poison = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Eigen::MatrixXd values(rows, cols);
  std::vector<std::byte> bytes;
  for (Eigen::Index r = 0; r < rows; ++r) {
    for (Eigen::Index c = 0; c < cols; ++c) {
      float x = normal(rng);
      const Eigen::Index index = r * cols + c;
      if (index < poison) x = index % 2 ? -std::numeric_limits<float>::infinity() : std::nanf("");
      std::byte raw[4];
      if (dtype == DType::F16) {
        const Eigen::half h(x);
        values(r, c) = static_cast<double>(static_cast<float>(h));
        std::memcpy(raw, &h, 2);
      } else if (dtype == DType::BF16) {
        const Eigen::bfloat16 b(x);
        values(r, c) = static_cast<double>(static_cast<float>(b));
        std::memcpy(raw, &b, 2);
      } else {
        values(r, c) = static_cast<double>(x);
        std::memcpy(raw, &x, 4);
      }
      bytes.insert(bytes.end(), raw, raw + dtype_bits(dtype) / 8);
    }
  }
  return {StoredFactor(dtype, rows, cols, std::move(bytes)), values};
}

double relative(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) { return (got - want).norm() / want.norm(); }

struct Shape {
  DType dtype;
  Eigen::Index rows, cols;
};
void PrintTo(const Shape& shape, std::ostream* out) {
  *out << dtype_name(shape.dtype) << " " << shape.rows << "x" << shape.cols;
}

class StoredFactorTest : public ::testing::TestWithParam<Shape> {};

TEST_P(StoredFactorTest, ProductsEqualThoseOfTheDecodedMatrix) {
  const auto [dtype, rows, cols] = GetParam();
  const Stored stored = make_stored(dtype, rows, cols, 7);
  const Eigen::MatrixXd& F = stored.values;
  std::uint64_t nonfinite = 0;

  // The Gram over the long side, as the planner takes it: BᵀB of an up, A·Aᵀ of a down.
  const bool tall = rows >= cols;
  const Eigen::MatrixXd gram = tall ? stored.factor.gram_of_columns(nonfinite) : stored.factor.gram_of_rows(nonfinite);
  EXPECT_EQ(nonfinite, 0u);
  const Eigen::MatrixXd want = tall ? Eigen::MatrixXd(F.transpose() * F) : Eigen::MatrixXd(F * F.transpose());
  EXPECT_LT(relative(gram.triangularView<Eigen::Lower>().toDenseMatrix(),
                     want.triangularView<Eigen::Lower>().toDenseMatrix()), 1e-14);

  const Eigen::MatrixXd right = Eigen::MatrixXd::Random(cols, 5);
  const Eigen::MatrixXd left = Eigen::MatrixXd::Random(3, rows);
  EXPECT_LT(relative(stored.factor.times<double>(right), F * right), 1e-14);
  EXPECT_LT(relative(stored.factor.left_times<double>(left), left * F), 1e-14);
  // float32 products: off by float rounding only (~√inner·ε₃₂), far below the 16-bit rounding they are
  // written with (4.9e-4 for fp16)
  auto float_error = [](Eigen::Index inner) { return 4 * 6e-8 * std::sqrt(static_cast<double>(inner)); };
  EXPECT_LT(relative(stored.factor.times<float>(right).cast<double>(), F * right), float_error(cols));
  EXPECT_LT(relative(stored.factor.left_times<float>(left).cast<double>(), left * F), float_error(rows));
  EXPECT_EQ(Eigen::MatrixXd(stored.factor.decoded()), F);
}

INSTANTIATE_TEST_SUITE_P(Shapes, StoredFactorTest,
                         ::testing::Values(Shape{DType::F16, 3000, 24},   // up: 2 row blocks, remainder
                                           Shape{DType::BF16, 12, 9000},  // down: 4 column blocks, remainder
                                           Shape{DType::F32, 1, 1}, Shape{DType::F16, 40000, 1},
                                           Shape{DType::BF16, 1, 40000}));

TEST(StoredFactor, CountsNonFiniteValuesInEitherGram) {
  const Stored stored = make_stored(DType::F16, 40, 5000, 3, 3);  // NaN, -Inf, NaN in the first row
  const Stored transposed = make_stored(DType::F16, 5000, 40, 3, 3);
  std::uint64_t by_columns = 0, by_rows = 0;
  transposed.factor.gram_of_columns(by_columns);
  stored.factor.gram_of_rows(by_rows);
  EXPECT_EQ(by_columns, 3u);
  EXPECT_EQ(by_rows, 3u);
}

TEST(StoredFactor, RejectsBytesThatDoNotMatchTheShape) {
  EXPECT_THROW(StoredFactor(DType::F16, 2, 3, std::vector<std::byte>(11)), Error);
}

}  // namespace
}  // namespace lorakit::detail
