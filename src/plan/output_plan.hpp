#pragma once
// What the output file holds: every tensor, where its bytes come from, and the metadata.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "plan/module_plan.hpp"

namespace lorakit::detail {

struct OutputTensor {
  enum class Source { copy, convert, factor_up, factor_down, scalar };
  TensorSpec spec;
  Source source = Source::copy;
  const TensorInfo* input = nullptr;  // copy, convert
  std::size_t plan = 0;               // factor_up, factor_down: index into the module plans
  double value = 0.0;                 // scalar
};

// The dtype a resized factor is written in: --dtype, else the input factor's own.
DType factor_dtype(const Module& module, const ResizeOptions& options, Role preferred);

// What one module writes: its resized factors (and alpha), its own tensors, or nothing when dropped.
// `index` is the plan's, for factor tensors.
std::vector<OutputTensor> module_outputs(const ModulePlan& plan, std::size_t index, const ResizeOptions& options);
std::uint64_t module_output_bytes(const ModulePlan& plan, const ResizeOptions& options);  // their data bytes

// Pass-through tensors, then every module's.
std::vector<OutputTensor> output_tensors(const AdapterModel& model, const std::vector<ModulePlan>& plans,
                                         const ResizeOptions& options);

// The input metadata with the reference's ss_* updates (FORMATS.md §4) and a rewritten PEFT config.
// `kohya_style` files also get sshs_* hashes, written by the caller.
struct OutputMetadata {
  Metadata metadata;
  bool has_metadata = false;
  bool kohya_style = false;
};
OutputMetadata output_metadata(const Header& header, const AdapterModel& model,
                               const std::vector<ModulePlan>& plans, const ResizeOptions& options);

// The whole output file of a set of plans, laid out exactly (sshs_* hashes as placeholders of their final
// length): what the writer writes, and what a planner measures when it tries ranks.
struct OutputFile {
  std::vector<OutputTensor> tensors;
  OutputMetadata metadata;
  std::vector<TensorSpec> specs;
  Layout layout;
};
OutputFile plan_output(const Header& header, const AdapterModel& model, const std::vector<ModulePlan>& plans,
                       const ResizeOptions& options);

// Python's repr() of a float ("8.0", "2.3333334922790527", "1e-05"), as kohya writes numbers.
std::string python_float(double value);

}  // namespace lorakit::detail
