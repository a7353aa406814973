// Quality gates and scheduling rules.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

template <typename F>
ErrorCode error_of(F&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::internal;
}

TEST(Gates, RetentionAcceptsFractionsAndPercentages) {
  EXPECT_DOUBLE_EQ(parse_retention("0.87"), 0.87);
  EXPECT_DOUBLE_EQ(parse_retention("87%"), 0.87);
  EXPECT_DOUBLE_EQ(parse_retention("87"), 0.87);
  EXPECT_DOUBLE_EQ(parse_retention(" 87.5 % "), 0.875);
  EXPECT_DOUBLE_EQ(parse_retention("1"), 1.0);  // a number up to 1 is a fraction
  EXPECT_DOUBLE_EQ(parse_retention("1%"), 0.01);
  EXPECT_DOUBLE_EQ(parse_retention("100"), 1.0);
  EXPECT_DOUBLE_EQ(parse_retention("0"), 0.0);
  for (const char* bad : {"", "%", "abc", "-0.5", "101", "150%", "0.9x", "nan", "inf"}) {
    EXPECT_EQ(error_of([&] { parse_retention(bad); }), ErrorCode::invalid_argument) << bad;
  }
}

TEST(Gates, SavingIsAlwaysAPercentage) {
  EXPECT_DOUBLE_EQ(parse_saving("20"), 0.20);
  EXPECT_DOUBLE_EQ(parse_saving("20%"), 0.20);
  EXPECT_DOUBLE_EQ(parse_saving("0.5"), 0.005);
  EXPECT_DOUBLE_EQ(parse_saving("100"), 1.0);
  for (const char* bad : {"", "x", "-1", "101", "200%"}) {
    EXPECT_EQ(error_of([&] { parse_saving(bad); }), ErrorCode::invalid_argument) << bad;
  }
}

TEST(Gates, OnDiscardNames) {
  EXPECT_EQ(parse_on_discard("skip"), OnDiscard::skip);
  EXPECT_EQ(parse_on_discard("copy"), OnDiscard::copy);
  EXPECT_EQ(parse_on_discard("delete"), std::nullopt);
}

ResizeReport planned(double retention, std::uint64_t in, std::uint64_t out) {
  ResizeReport report;
  report.average_fro = retention;
  report.input_bytes = in;
  report.output_bytes = out;
  return report;
}

TEST(Gates, DiscardReasons) {
  Gates gates;
  EXPECT_FALSE(gates.active());
  EXPECT_EQ(discard_reason(planned(0.1, 100, 100), gates), std::nullopt);

  gates.min_retention = 0.87;
  EXPECT_TRUE(gates.active());
  EXPECT_EQ(discard_reason(planned(0.8612, 100, 10), gates), "retention 86.1% below the minimum 87.0%");
  EXPECT_EQ(discard_reason(planned(0.87, 100, 10), gates), std::nullopt);  // at the threshold: kept
  EXPECT_EQ(discard_reason(planned(std::numeric_limits<double>::quiet_NaN(), 100, 10), gates), std::nullopt);

  gates.min_retention.reset();
  gates.min_saving = 0.20;
  EXPECT_EQ(discard_reason(planned(0.99, 1000, 850), gates), "saving 15.0% below the minimum 20.0%");
  EXPECT_EQ(discard_reason(planned(0.99, 1000, 1010), gates), "saving -1.0% below the minimum 20.0%");
  EXPECT_EQ(discard_reason(planned(0.99, 1000, 800), gates), std::nullopt);

  gates.min_retention = 0.9;  // both: retention is named first
  EXPECT_EQ(discard_reason(planned(0.5, 1000, 990), gates), "retention 50.0% below the minimum 90.0%");
}

TEST(Schedule, MemorySizes) {
  EXPECT_EQ(parse_memory("4G"), 4ULL << 30);
  EXPECT_EQ(parse_memory("512M"), 512ULL << 20);
  EXPECT_EQ(parse_memory("1.5GiB"), 3ULL << 29);
  EXPECT_EQ(parse_memory("800MB"), 800ULL << 20);
  EXPECT_EQ(parse_memory("64k"), 64ULL << 10);
  EXPECT_EQ(parse_memory("2T"), 2ULL << 40);
  EXPECT_EQ(parse_memory("123456"), 123456U);
  EXPECT_EQ(parse_memory("100B"), 100U);
  for (const char* bad : {"", "G", "4X", "0", "-1G", "4GG", "4 G", "nan", "0.1"}) {
    EXPECT_EQ(error_of([&] { parse_memory(bad); }), ErrorCode::invalid_argument) << bad;
  }
}

TEST(Schedule, ThreadsPerFile) {
  EXPECT_EQ(threads_per_file(0, 1, 8), 8U);  // one file at a time: all cores
  EXPECT_EQ(threads_per_file(0, 2, 8), 4U);
  EXPECT_EQ(threads_per_file(0, 3, 8), 2U);
  EXPECT_EQ(threads_per_file(0, 16, 8), 1U);
  EXPECT_EQ(threads_per_file(3, 2, 8), 3U);  // --threads wins
  EXPECT_GE(available_cores(), 1U);
}

TEST(Schedule, MemoryBudgetAdmitsWhatFitsAndAlwaysOneFile) {
  MemoryBudget budget(1000);
  EXPECT_TRUE(budget.can_start(5000));  // nothing runs: one file always runs
  budget.start(600);
  EXPECT_TRUE(budget.can_start(400));
  EXPECT_FALSE(budget.can_start(401));
  budget.start(400);
  EXPECT_FALSE(budget.can_start(1));
  budget.finish(600);
  EXPECT_EQ(budget.in_use(), 400U);
  EXPECT_TRUE(budget.can_start(600));
  budget.finish(400);
  budget.start(5000);  // the one oversized file
  EXPECT_FALSE(budget.can_start(1));
  budget.finish(5000);
  EXPECT_TRUE(budget.can_start(5000));

  MemoryBudget unlimited(std::nullopt);
  unlimited.start(1ULL << 60);
  EXPECT_TRUE(unlimited.can_start(1ULL << 60));
}

}  // namespace
}  // namespace lorakit::batch
