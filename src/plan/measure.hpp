#pragma once
// Every module's exact spectrum without singular vectors — pass 1 of a dry run, of a target, of an
// analysis — and the plans any options give from it. They are the plans a resize computes (the same
// decisions, applied the same way), so a dry run predicts the written file to the byte.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "plan/module_plan.hpp"

namespace lorakit::detail {

// `indices` by decreasing spectrum cost ((m + n)·R², MATH.md §1), so that no large module is left to run
// alone at the end of a pass.
std::vector<std::size_t> largest_first(const std::vector<Module>& modules, std::vector<std::size_t> indices);

// The file's adapter model (`sidecar`: the PEFT adapter_config.json that scales it); Error(not_an_adapter)
// when it holds no module.
AdapterModel load_modules(const Reader& reader, const PeftSidecar* sidecar = nullptr);

// Measures every module but those `options` drop (read in parallel on options.threads, largest first;
// `done` is called on the calling thread with the number measured). A measured module's outcome is still
// open: `unchanged`, with its spectrum (open_for_target).
std::vector<ModulePlan> measure_modules(const Reader& reader, const AdapterModel& model, const ResizeOptions& options,
                                        const std::function<void(std::size_t done)>& done);

// The plans `options` give on measured modules: --drop / --exclude / --include, then the options' rule, or
// their target across the file. Throws Error(target_unreachable) for a target no ranks meet.
std::vector<ModulePlan> plans_for(const Header& header, const AdapterModel& model,
                                  const std::vector<ModulePlan>& measured, const ResizeOptions& options,
                                  std::uint64_t input_size);

// A decision that does not look at the spectrum.
RankDecider always(RankDecision decision);

}  // namespace lorakit::detail
