#pragma once
// Pass 1 of a resize: one module's exact spectrum, its chosen rank, and what will be written.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/spectrum.hpp"
#include "plan/module_factors.hpp"

namespace lorakit::detail {

struct ModulePlan {
  const Module* module = nullptr;
  ModuleReport report;
  bool emit_lora = false;  // false: re-emit the module's own tensors (dtype-converted if asked), or none
  std::uint64_t rank = 0;  // rank written when emit_lora (may exceed the numerical rank: zero-padded)
  // The module's exact spectrum (all ρ values, descending; none for a zero module), unless it was never
  // computed (non-finite factors, --drop, --keep-lycoris).
  std::optional<std::vector<double>> sigma;
  // Kept directions of the factored SVD (at most `rank`), for products and for LoKr.
  std::optional<FactoredSvd> product;
  std::optional<KronSvd> kron;
  double factor_scale = 1.0;            // folded into the written factors when no alpha can carry it
  std::optional<double> written_alpha;  // alpha tensor / PEFT alpha for the written module
};

// What pass 1 does with a module once its spectrum is known.
struct RankDecision {
  ModuleOutcome outcome = ModuleOutcome::resized;
  std::uint64_t rank = 0;  // the rank written when resized
  std::string note;        // why it is kept, excluded or dropped, when that needs saying
};
// Decides from the module's exact spectrum (σ of the unscaled product, descending) and its rank as
// reported (ModuleReport::old_rank); called once, with every singular value known, before any singular
// vector is computed.
using RankDecider = std::function<RankDecision(std::span<const double> sigma, std::uint64_t old_rank)>;

// The rank the options' rule gives a module (FORMATS.md §4, with --min-rank / --max-rank), and whether a
// LyCORIS module is better kept in its own form. old_rank: ModuleReport::old_rank.
RankDecision decide_by_rule(const Module& module, const ResizeOptions& options, std::span<const double> sigma,
                            std::uint64_t old_rank);

// The module's report fields that do not depend on the rank (name, kind, shape, old rank and alpha, notes).
ModulePlan describe_module(const Module& module);

// Reads the module, computes its exact spectrum, asks `decide`, and computes singular vectors for the
// directions a resize writes. A module with non-finite factors is kept unchanged without asking.
// With `loaded`, a product module that will be resized leaves its factors there, so that its resized
// factors can be computed without reading them again.
ModulePlan plan_module(const Reader& reader, const Module& module, const ResizeOptions& options,
                       const RankDecider& decide, LoadedFactors* loaded = nullptr);

// Sets what `decision` writes — outcome, rank, retention, alpha — on a plan with a known spectrum: the
// one way plan_module and a planner that tries ranks before computing directions fill a plan. Truncates
// the kept directions to the rank, if there are any.
void apply_decision(ModulePlan& plan, const RankDecision& decision);

// A module removed by --drop: never read, not measured.
ModulePlan dropped_by_filter(const Module& module);

// One written factor of an emit_lora plan, in `dtype`: up (out × rank) or down (rank × in_flat) of the
// unscaled product truncated to `rank`, √σ split evenly, times factor_scale. Each reads only what it
// needs, so the two halves of a module can be produced independently; `loaded` (from plan_module) spares
// the read.
std::vector<std::byte> emit_factor(const Reader& reader, const ModulePlan& plan, Side side, DType dtype,
                                   const LoadedFactors* loaded = nullptr);

}  // namespace lorakit::detail
