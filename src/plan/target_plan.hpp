#pragma once
// Ranks for a size or quality target (--target-size, --target-ratio, --target-retention): every module
// offers its choices — a LoRA-form rank, its own form (unchanged / kept LyCORIS), or with --allow-drop
// nothing — with the exact bytes it writes and the value it keeps under the objective; lorakit/budget.hpp
// spends the bytes, and the result is fitted to the exact file size, header included (its length depends
// on the ranks: shape digits, offsets, a PEFT config's rank_pattern).
#include <cstdint>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "plan/module_plan.hpp"

namespace lorakit::detail {

// A decision for a module whose spectrum is known and whose outcome is still open.
bool open_for_target(const ModulePlan& probed);

// `probed`: pass 1's plans, each with its spectrum and outcome `unchanged` when open_for_target, or in its
// final state (--drop, --exclude, non-finite, --keep-lycoris). Returns a decision for every module (the
// final ones repeated). Throws Error(target_unreachable) when no choice of ranks meets the target.
std::vector<RankDecision> decide_for_target(const Header& header, const AdapterModel& model,
                                            const std::vector<ModulePlan>& probed, const ResizeOptions& options,
                                            std::uint64_t input_size);

// The size ↔ objective frontier the target's allocation moves along (lorakit/budget.hpp's frontier()):
// at every point, the file size — its data exact, its header as laid out for the smallest allocation —
// and options.objective as the report computes it.
struct FrontierSample {
  std::uint64_t bytes = 0;
  double retention = 0.0;
};
std::vector<FrontierSample> target_frontier(const Header& header, const AdapterModel& model,
                                            const std::vector<ModulePlan>& probed, const ResizeOptions& options);

// The plans `decisions` give: copies of `probed` with each decision applied (no singular vectors).
std::vector<ModulePlan> with_decisions(const std::vector<ModulePlan>& probed,
                                       const std::vector<RankDecision>& decisions);

// The byte target of --target-size / --target-ratio for an input of `input_size` bytes.
std::uint64_t target_bytes(const ResizeOptions& options, std::uint64_t input_size);

}  // namespace lorakit::detail
