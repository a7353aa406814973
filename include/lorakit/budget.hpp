#pragma once
// Spending a byte budget across modules (MATH.md §6). Every module offers choices (its possible ranks,
// or being kept or dropped), each with an exact byte cost and a value under the objective; an
// allocation picks one choice per module.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace lorakit {

// What a size or quality target maximises / must reach.
//   mean    the mean of per-module Frobenius retention (the reference's "Average Frobenius norm
//           retention"): a module's value is its fro retained
//   energy  the retention of the whole file, ‖ΔW_new‖_F / ‖ΔW‖_F over all modules: a module's value is
//           its retained energy ‖ΔW_k‖²_F
enum class Objective { mean, energy };
std::optional<Objective> parse_objective(std::string_view name);  // "mean", "energy"
std::string_view objective_name(Objective objective);

struct Choice {
  std::uint64_t cost = 0;  // bytes this choice writes
  double value = 0.0;      // objective value it keeps (finite, ≥ 0)
};
using Choices = std::vector<Choice>;  // one module's choices, in any order (at least one)

struct Allocation {
  std::vector<std::size_t> picks;  // per module, an index into its Choices
  std::uint64_t cost = 0;          // Σ picked costs
  double value = 0.0;              // Σ picked values
};

// The most value within `budget` bytes, or nothing when even the cheapest choices exceed it.
//
// Greedy by value per byte over each module's upper concave hull of (cost, value) — the hull's steps have
// decreasing gains per byte, as a module's retention gains per added rank do (MATH.md §6) — taking steps in
// order until the first that does not fit. That prefix is optimal, not approximately so, for the bytes it
// spends: it is the optimum of the LP relaxation at that cost, and integral. Against the whole budget it
// is within one increment: the optimum exceeds it by less than the gain of the step that did not fit. Two
// passes then only add value: later steps of other modules that still fit, and a fill of the leftover
// bytes with any single upgrade (hull or not) that fits, largest gain first.
std::optional<Allocation> allocate_within(std::span<const Choices> modules, std::uint64_t budget);

// The fewest bytes whose value reaches `target`, or nothing when even the best choices fall short.
// Hull steps are taken in the same order until the value reaches the target; that prefix costs less than
// one increment (the last step's bytes) more than the cheapest allocation that reaches it. A trim pass then
// takes back single choices, largest saving first, while the value stays at or above the target.
std::optional<Allocation> allocate_to_reach(std::span<const Choices> modules, double target);

// The greedy's path: the cheapest allocation, then one point per hull step taken in order. Every point
// is optimal for its own cost (see allocate_within): together they are the size ↔ value frontier.
struct FrontierPoint {
  std::uint64_t cost = 0;
  double value = 0.0;
};
std::vector<FrontierPoint> frontier(std::span<const Choices> modules);

}  // namespace lorakit
