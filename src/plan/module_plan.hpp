#pragma once
// Pass 1 of a resize: one module's exact spectrum, its chosen rank, and what will be written.
#include <cstdint>
#include <optional>
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
  bool emit_lora = false;  // false: re-emit the module's own tensors (dtype-converted if asked)
  std::uint64_t rank = 0;  // rank written when emit_lora (may exceed the numerical rank: zero-padded)
  // Kept directions of the factored SVD (at most `rank`), for products and for LoKr.
  std::optional<FactoredSvd> product;
  std::optional<KronSvd> kron;
  double factor_scale = 1.0;            // folded into the written factors when no alpha can carry it
  std::optional<double> written_alpha;  // alpha tensor / PEFT alpha for the written module
};

// With `loaded`, a product module that will be resized leaves its factors there, so that its
// resized factors can be computed without reading them again.
ModulePlan plan_module(const Reader& reader, const Module& module, const ResizeOptions& options,
                       LoadedFactors* loaded = nullptr);

// One written factor of an emit_lora plan, in `dtype`: up (out × rank) or down (rank × in_flat) of the
// unscaled product truncated to `rank`, √σ split evenly, times factor_scale. Each reads only what it
// needs, so the two halves of a module can be produced independently; `loaded` (from plan_module) spares
// the read.
std::vector<std::byte> emit_factor(const Reader& reader, const ModulePlan& plan, Side side, DType dtype,
                                   const LoadedFactors* loaded = nullptr);

}  // namespace lorakit::detail
