// Byte-budget allocation (MATH.md §6): greedy over concave hulls, then passes that use the leftover.
#include "lorakit/budget.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit {
namespace {

constexpr std::array<std::pair<Objective, std::string_view>, 2> kObjectiveNames{{
    {Objective::mean, "mean"},
    {Objective::energy, "energy"},
}};

// One step of a module's hull: from hull point `step` to `step + 1`.
struct Step {
  std::size_t module = 0;
  std::size_t step = 0;
  std::uint64_t cost = 0;  // extra bytes
  double gain = 0.0;       // extra value
  double per_byte = 0.0;   // gain / cost, never above the module's previous step's
};

// Upper concave hull of a module's choices from its cheapest one (ties: the most valuable), as indices
// into the choices: costs and values strictly increase, gains per byte strictly decrease.
std::vector<std::size_t> upper_hull(const Choices& choices) {
  std::vector<std::size_t> order(choices.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (choices[a].cost != choices[b].cost) return choices[a].cost < choices[b].cost;
    return choices[a].value > choices[b].value;
  });
  std::vector<std::size_t> hull;
  for (std::size_t index : order) {
    const Choice& next = choices[index];
    if (!hull.empty() && next.value <= choices[hull.back()].value) continue;  // dominated: dearer, not better
    // Pop the last point while it lies on or below the segment from its predecessor to `next`.
    while (hull.size() >= 2) {
      const Choice& last = choices[hull[hull.size() - 1]];
      const Choice& before = choices[hull[hull.size() - 2]];
      const double left = (last.value - before.value) * static_cast<double>(next.cost - last.cost);
      const double right = (next.value - last.value) * static_cast<double>(last.cost - before.cost);
      if (left > right) break;
      hull.pop_back();
    }
    hull.push_back(index);
  }
  return hull;
}

void validate(std::span<const Choices> modules) {
  for (std::size_t m = 0; m < modules.size(); ++m) {
    if (modules[m].empty()) {
      throw Error(ErrorCode::internal, fmt::format("budget: module {} has no choice", m));
    }
    for (const Choice& choice : modules[m]) {
      if (!std::isfinite(choice.value) || choice.value < 0.0) {
        throw Error(ErrorCode::internal, fmt::format("budget: module {} has a choice of value {}", m, choice.value));
      }
    }
  }
}

// Every module's hull, its cheapest allocation, and all hull steps in greedy order: gain per byte
// descending, ties by module then step, so that a module's steps keep their order.
struct Greedy {
  std::vector<std::vector<std::size_t>> hulls;
  std::vector<Step> steps;
  Allocation base;

  explicit Greedy(std::span<const Choices> modules) {
    validate(modules);
    hulls.reserve(modules.size());
    for (std::size_t m = 0; m < modules.size(); ++m) {
      hulls.push_back(upper_hull(modules[m]));
      const std::vector<std::size_t>& hull = hulls.back();
      const Choice& cheapest = modules[m][hull.front()];
      base.picks.push_back(hull.front());
      base.cost += cheapest.cost;
      base.value += cheapest.value;
      double previous = std::numeric_limits<double>::infinity();
      for (std::size_t s = 0; s + 1 < hull.size(); ++s) {
        const Choice& from = modules[m][hull[s]];
        const Choice& to = modules[m][hull[s + 1]];
        const double gain = to.value - from.value;
        const std::uint64_t cost = to.cost - from.cost;
        // Rounding of the division must not let a step overtake its module's previous one.
        previous = std::min(previous, gain / static_cast<double>(cost));
        steps.push_back({m, s, cost, gain, previous});
      }
    }
    // Ties keep the insertion order (module, then step), so a module's steps stay in order.
    std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) { return a.per_byte > b.per_byte; });
  }

  void take(Allocation& allocation, const Step& step) const {
    allocation.picks[step.module] = hulls[step.module][step.step + 1];
    allocation.cost += step.cost;
    allocation.value += step.gain;
  }
};

void repick(Allocation& allocation, std::span<const Choices> modules, std::size_t module, std::size_t pick) {
  const Choice& from = modules[module][allocation.picks[module]];
  const Choice& to = modules[module][pick];
  allocation.cost = allocation.cost - from.cost + to.cost;
  allocation.value += to.value - from.value;
  allocation.picks[module] = pick;
}

// Leftover bytes: repeatedly the single upgrade of largest gain that still fits (ties: fewer bytes).
void fill(Allocation& allocation, std::span<const Choices> modules, std::uint64_t budget) {
  for (;;) {
    std::optional<std::pair<std::size_t, std::size_t>> best;
    double best_gain = 0.0;
    std::uint64_t best_cost = 0;
    for (std::size_t m = 0; m < modules.size(); ++m) {
      const Choice& current = modules[m][allocation.picks[m]];
      for (std::size_t c = 0; c < modules[m].size(); ++c) {
        const Choice& candidate = modules[m][c];
        if (candidate.value <= current.value) continue;
        const std::uint64_t extra = candidate.cost > current.cost ? candidate.cost - current.cost : 0;
        if (allocation.cost - current.cost + candidate.cost > budget) continue;
        const double gain = candidate.value - current.value;
        if (!best || gain > best_gain || (gain == best_gain && extra < best_cost)) {
          best = {m, c};
          best_gain = gain;
          best_cost = extra;
        }
      }
    }
    if (!best) return;
    repick(allocation, modules, best->first, best->second);
  }
}

// Repeatedly takes back the single choice that saves the most bytes while the value stays ≥ target.
void trim(Allocation& allocation, std::span<const Choices> modules, double target) {
  for (;;) {
    std::optional<std::pair<std::size_t, std::size_t>> best;
    std::uint64_t best_saving = 0;
    for (std::size_t m = 0; m < modules.size(); ++m) {
      const Choice& current = modules[m][allocation.picks[m]];
      for (std::size_t c = 0; c < modules[m].size(); ++c) {
        const Choice& candidate = modules[m][c];
        if (candidate.cost >= current.cost) continue;
        if (allocation.value - current.value + candidate.value < target) continue;
        if (current.cost - candidate.cost > best_saving) {
          best = {m, c};
          best_saving = current.cost - candidate.cost;
        }
      }
    }
    if (!best) return;
    repick(allocation, modules, best->first, best->second);
  }
}

}  // namespace

std::optional<Objective> parse_objective(std::string_view name) {
  for (const auto& [objective, objective_name] : kObjectiveNames) {
    if (objective_name == name) return objective;
  }
  return std::nullopt;
}

std::string_view objective_name(Objective objective) {
  for (const auto& [candidate, name] : kObjectiveNames) {
    if (candidate == objective) return name;
  }
  return "unknown";
}

std::optional<Allocation> allocate_within(std::span<const Choices> modules, std::uint64_t budget) {
  const Greedy greedy(modules);
  if (greedy.base.cost > budget) return std::nullopt;
  Allocation allocation = greedy.base;
  std::vector<bool> blocked(modules.size(), false);  // a step of the module did not fit: its later ones cannot follow
  for (const Step& step : greedy.steps) {
    if (blocked[step.module]) continue;
    if (allocation.cost + step.cost > budget) {
      blocked[step.module] = true;
      continue;
    }
    greedy.take(allocation, step);
  }
  fill(allocation, modules, budget);
  return allocation;
}

std::optional<Allocation> allocate_to_reach(std::span<const Choices> modules, double target) {
  const Greedy greedy(modules);
  Allocation allocation = greedy.base;
  for (const Step& step : greedy.steps) {
    if (allocation.value >= target) break;
    greedy.take(allocation, step);
  }
  if (allocation.value < target) return std::nullopt;
  trim(allocation, modules, target);
  return allocation;
}

std::vector<FrontierPoint> frontier(std::span<const Choices> modules) {
  const Greedy greedy(modules);
  Allocation allocation = greedy.base;
  std::vector<FrontierPoint> points{{allocation.cost, allocation.value}};
  for (const Step& step : greedy.steps) {
    greedy.take(allocation, step);
    points.push_back({allocation.cost, allocation.value});
  }
  return points;
}

}  // namespace lorakit
