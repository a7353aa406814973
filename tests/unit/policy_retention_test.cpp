// retention() against FORMATS.md §4, expected values written out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"

namespace lorakit {
namespace {

const std::vector<double> kSigma{4, 2, 1, 1};  // Σσ = 8, Σσ² = 16 + 4 + 1 + 1 = 22

TEST(Retention, LeadingValues) {
  const Retention one = retention(kSigma, 1);
  EXPECT_DOUBLE_EQ(one.sum, 0.5);                                    // 4 / 8
  EXPECT_DOUBLE_EQ(one.fro, std::sqrt(16.0) / std::sqrt(22.0));      // √16 / √22
  EXPECT_DOUBLE_EQ(one.max_ratio, 1.0);                              // 4 / 4

  const Retention two = retention(kSigma, 2);
  EXPECT_DOUBLE_EQ(two.sum, 0.75);                                   // 6 / 8
  EXPECT_DOUBLE_EQ(two.fro, std::sqrt(20.0) / std::sqrt(22.0));
  EXPECT_DOUBLE_EQ(two.max_ratio, 2.0);                              // 4 / 2

  const Retention three = retention(kSigma, 3);
  EXPECT_DOUBLE_EQ(three.sum, 0.875);                                // 7 / 8
  EXPECT_DOUBLE_EQ(three.fro, std::sqrt(21.0) / std::sqrt(22.0));
  EXPECT_DOUBLE_EQ(three.max_ratio, 4.0);                            // 4 / 1
}

TEST(Retention, AllValuesRetainEverything) {
  const Retention all = retention(kSigma, 4);
  EXPECT_EQ(all.sum, 1.0);
  EXPECT_EQ(all.fro, 1.0);
  EXPECT_EQ(all.max_ratio, 4.0);
}

TEST(Retention, RankBeyondTheListCountsMissingValuesAsZeros) {
  // k = 5 > ρ = 4: σ₅ = 0 in the full spectrum, so σ₁/σ₅ = +inf (the reference divides by 0).
  const Retention beyond = retention(kSigma, 5);
  EXPECT_EQ(beyond.sum, 1.0);
  EXPECT_EQ(beyond.fro, 1.0);
  EXPECT_EQ(beyond.max_ratio, std::numeric_limits<double>::infinity());
}

TEST(Retention, SumsThatRoundDifferentlyStillGiveOne) {
  // 0.7 + 0.2 + 0.1 rounds to 0.9999999999999999 in this order; keeping everything is still exactly 1.
  const std::vector<double> sigma{0.7, 0.2, 0.1};
  EXPECT_EQ(retention(sigma, 3).sum, 1.0);
  EXPECT_EQ(retention(sigma, 3).fro, 1.0);
}

TEST(Retention, ZeroModuleIsNaN) {
  for (const std::vector<double>& sigma : {std::vector<double>{}, std::vector<double>{0.0, 0.0}}) {
    const Retention zero = retention(sigma, 1);
    EXPECT_TRUE(std::isnan(zero.sum));
    EXPECT_TRUE(std::isnan(zero.fro));
    EXPECT_TRUE(std::isnan(zero.max_ratio));
  }
}

TEST(Retention, RankZeroModuleIsAZeroModule) {  // r = 0: no σ at all, NaN like any zero module
  EXPECT_TRUE(std::isnan(retention(std::vector<double>{}, 0).fro));
}

TEST(Retention, RankZeroOfANonzeroModuleIsRejected) {
  try {
    retention(kSigma, 0);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
  }
}

}  // namespace
}  // namespace lorakit
