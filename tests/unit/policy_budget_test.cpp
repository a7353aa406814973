// The budget allocator against brute force (every combination of choices) on small random instances.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "lorakit/budget.hpp"

namespace lorakit {
namespace {

constexpr double kTolerance = 1e-12;

// Best value within `budget` and cheapest cost reaching `target`, over all combinations.
struct BruteForce {
  double best_value = -1.0;
  std::uint64_t cheapest = std::numeric_limits<std::uint64_t>::max();
};

BruteForce brute_force(const std::vector<Choices>& modules, std::uint64_t budget, double target) {
  BruteForce result;
  std::vector<std::size_t> pick(modules.size(), 0);
  for (;;) {
    std::uint64_t cost = 0;
    double value = 0.0;
    for (std::size_t m = 0; m < modules.size(); ++m) {
      cost += modules[m][pick[m]].cost;
      value += modules[m][pick[m]].value;
    }
    if (cost <= budget) result.best_value = std::max(result.best_value, value);
    if (value >= target) result.cheapest = std::min(result.cheapest, cost);
    std::size_t m = 0;
    while (m < modules.size() && ++pick[m] == modules[m].size()) pick[m++] = 0;
    if (m == modules.size()) return result;
  }
}

// A module as the resizer sees it: rank k costs k·per_rank + fixed bytes and keeps √(Σ_{i≤k}σ²/Σσ²)
// (concave in k); sometimes with a "kept in its own form" choice at full value, or a drop at 0.
Choices random_module(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> ranks(1, 6);
  std::uniform_int_distribution<int> width(1, 12);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int r = ranks(rng);
  const std::uint64_t per_rank = static_cast<std::uint64_t>(width(rng)) * (unit(rng) < 0.5 ? 2 : 4);  // fp16 / fp32
  const std::uint64_t fixed = unit(rng) < 0.5 ? 0 : 4;
  std::vector<double> sigma(static_cast<std::size_t>(r));
  for (double& s : sigma) s = std::pow(unit(rng), 2.0);
  std::sort(sigma.rbegin(), sigma.rend());
  double total = 0.0;
  for (double s : sigma) total += s * s;
  Choices choices;
  double kept = 0.0;
  for (int k = 1; k <= r; ++k) {
    kept += sigma[static_cast<std::size_t>(k - 1)] * sigma[static_cast<std::size_t>(k - 1)];
    choices.push_back({static_cast<std::uint64_t>(k) * per_rank + fixed, total > 0 ? std::sqrt(kept / total) : 0.0});
  }
  if (unit(rng) < 0.3) choices.push_back({static_cast<std::uint64_t>(width(rng)) * 6, 1.0});  // kept: not on the curve
  if (unit(rng) < 0.3) choices.push_back({0, 0.0});                                            // dropped
  std::shuffle(choices.begin(), choices.end(), rng);
  return choices;
}

std::vector<Choices> random_instance(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> count(1, 5);
  std::vector<Choices> modules(static_cast<std::size_t>(count(rng)));
  for (Choices& m : modules) m = random_module(rng);
  return modules;
}

void expect_consistent(const Allocation& a, const std::vector<Choices>& modules) {
  ASSERT_EQ(a.picks.size(), modules.size());
  std::uint64_t cost = 0;
  double value = 0.0;
  for (std::size_t m = 0; m < modules.size(); ++m) {
    ASSERT_LT(a.picks[m], modules[m].size());
    cost += modules[m][a.picks[m]].cost;
    value += modules[m][a.picks[m]].value;
  }
  EXPECT_EQ(a.cost, cost);
  EXPECT_NEAR(a.value, value, kTolerance);
}

std::uint64_t total_cost(const std::vector<Choices>& modules, bool cheapest) {
  std::uint64_t total = 0;
  for (const Choices& m : modules) {
    auto by_cost = [](const Choice& a, const Choice& b) { return a.cost < b.cost; };
    total += cheapest ? std::min_element(m.begin(), m.end(), by_cost)->cost
                      : std::max_element(m.begin(), m.end(), by_cost)->cost;
  }
  return total;
}

TEST(Budget, EveryFrontierPointIsOptimalForItsCost) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<Choices> modules = random_instance(rng);
    const std::vector<FrontierPoint> points = frontier(modules);
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (i > 0) {
        EXPECT_GT(points[i].cost, points[i - 1].cost);
        EXPECT_GE(points[i].value, points[i - 1].value);  // a gain below the sum's last bit leaves it equal
      }
      const BruteForce best = brute_force(modules, points[i].cost, 0.0);
      EXPECT_NEAR(points[i].value, best.best_value, kTolerance) << "trial " << trial << " point " << i;
    }
  }
}

// Between frontier points p_i ≤ budget < p_{i+1}: p_i ≤ allocation ≤ optimum ≤ p_{i+1} (the LP bound), so the
// allocation is within one increment of the optimum.
TEST(Budget, WithinBudgetIsWithinOneIncrementOfTheOptimum) {
  std::mt19937_64 rng(12);
  int optimal = 0, cases = 0;
  double worst_fraction = 0.0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<Choices> modules = random_instance(rng);
    const std::uint64_t low = total_cost(modules, true), high = total_cost(modules, false);
    std::uniform_int_distribution<std::uint64_t> budgets(low, high + 2);
    const std::vector<FrontierPoint> points = frontier(modules);
    for (int b = 0; b < 8; ++b) {
      const std::uint64_t budget = budgets(rng);
      const std::optional<Allocation> a = allocate_within(modules, budget);
      ASSERT_TRUE(a.has_value());
      expect_consistent(*a, modules);
      EXPECT_LE(a->cost, budget);
      const double best = brute_force(modules, budget, 0.0).best_value;
      EXPECT_LE(a->value, best + kTolerance);
      std::size_t i = 0;
      while (i + 1 < points.size() && points[i + 1].cost <= budget) ++i;
      EXPECT_GE(a->value, points[i].value - kTolerance);
      if (i + 1 < points.size()) {
        EXPECT_LE(best, points[i + 1].value + kTolerance);
        const double increment = points[i + 1].value - points[i].value;
        worst_fraction = std::max(worst_fraction, (best - a->value) / increment);
      }
      ++cases;
      optimal += a->value >= best - kTolerance;
    }
  }
  EXPECT_LE(worst_fraction, 1.0);
  // The passes after the greedy prefix do their work: most random budgets end at the exact optimum.
  EXPECT_GT(optimal, cases * 3 / 4) << optimal << " of " << cases << " optimal; worst gap "
                                    << worst_fraction << " of an increment";
}

TEST(Budget, ReachingATargetCostsLessThanOneIncrementAboveTheCheapest) {
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<Choices> modules = random_instance(rng);
    const std::vector<FrontierPoint> points = frontier(modules);
    const double target = points.front().value + unit(rng) * (points.back().value - points.front().value);
    const std::optional<Allocation> a = allocate_to_reach(modules, target);
    ASSERT_TRUE(a.has_value());
    expect_consistent(*a, modules);
    EXPECT_GE(a->value, target);
    const std::uint64_t cheapest = brute_force(modules, 0, target).cheapest;
    EXPECT_GE(a->cost, cheapest);
    std::size_t j = 0;
    while (points[j].value < target) ++j;
    EXPECT_LE(a->cost, points[j].cost);
    if (j > 0) {
      EXPECT_GT(cheapest, points[j - 1].cost) << "trial " << trial;
    }
  }
}

// An fp32 module (400 bytes per rank) whose next rank gains the most, beside an fp16 one (200 bytes per
// rank) whose next two ranks gain less each but more per byte: 400 spare bytes go to the fp16 module.
TEST(Budget, GainsAreWeighedPerByteAcrossDtypes) {
  const std::vector<double> fp16_retention{0.5, 0.72, 0.88, 0.96, 1.0};
  const std::vector<double> fp32_retention{0.5, 0.75, 0.9, 0.97, 1.0};
  Choices fp16, fp32;
  for (std::size_t k = 1; k <= 5; ++k) {
    fp16.push_back({k * 200, fp16_retention[k - 1]});
    fp32.push_back({k * 400, fp32_retention[k - 1]});
  }
  const std::vector<Choices> modules{fp32, fp16};
  const std::uint64_t budget = 400 + 200 + 400;
  const std::optional<Allocation> a = allocate_within(modules, budget);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->picks[0], 0u);  // fp32: rank 1
  EXPECT_EQ(a->picks[1], 2u);  // fp16: rank 3
  EXPECT_NEAR(a->value, brute_force(modules, budget, 0.0).best_value, kTolerance);
}

TEST(Budget, ImpossibleRequestsGiveNothing) {
  const std::vector<Choices> modules{{{100, 0.5}, {200, 1.0}}, {{50, 0.2}, {80, 0.4}}};
  EXPECT_FALSE(allocate_within(modules, 149).has_value());
  EXPECT_TRUE(allocate_within(modules, 150).has_value());
  EXPECT_FALSE(allocate_to_reach(modules, 1.41).has_value());
  const std::optional<Allocation> all = allocate_to_reach(modules, 1.4);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->cost, 280u);
}

TEST(Budget, ObjectiveNames) {
  EXPECT_EQ(parse_objective("mean"), Objective::mean);
  EXPECT_EQ(parse_objective("energy"), Objective::energy);
  EXPECT_EQ(parse_objective("Mean"), std::nullopt);
  EXPECT_EQ(objective_name(Objective::energy), "energy");
}

}  // namespace
}  // namespace lorakit
