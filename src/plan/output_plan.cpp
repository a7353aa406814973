#include "plan/output_plan.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"
#include "plan/peft_sidecar.hpp"

namespace lorakit::detail {
namespace {

bool is_factor(Role role) { return role != Role::alpha && role != Role::scale && role != Role::dora; }

}  // namespace

DType factor_dtype(const Module& module, const ResizeOptions& options, Role preferred) {
  if (options.dtype) return *options.dtype;
  if (const TensorInfo* info = module.tensor(preferred)) return info->dtype;
  for (const auto& [role, info] : module.tensors) {
    if (is_factor(role)) return info->dtype;
  }
  return DType::F32;
}

namespace {

// Alpha keeps its dtype (or --dtype) when that holds the value exactly; otherwise it is widened to
// F32, so that alpha'/k stays what loaders computed before (the reference rounds it instead).
DType alpha_dtype(const TensorInfo& input_alpha, const ResizeOptions& options, double value) {
  const DType wanted = options.dtype.value_or(input_alpha.dtype);
  if (!is_float(wanted)) return DType::F32;
  std::array<std::byte, 8> bytes{};
  const std::array<double, 1> in{value};
  std::array<double, 1> back{};
  const std::size_t size = dtype_bits(wanted) / 8;
  encode(wanted, in, std::span(bytes.data(), size));
  decode(wanted, std::span<const std::byte>(bytes.data(), size), back);
  return back[0] == value ? wanted : DType::F32;
}

std::vector<std::uint64_t> down_shape(const Module& module, std::uint64_t rank) {
  std::vector<std::uint64_t> shape{rank};
  if (module.has_kernel()) {
    shape.insert(shape.end(), module.weight_shape.begin() + 1, module.weight_shape.end());
  } else {
    shape.push_back(module.in_flat());
  }
  return shape;
}

std::vector<std::uint64_t> up_shape(const Module& module, std::uint64_t rank) {
  std::vector<std::uint64_t> shape{module.out_features(), rank};
  if (module.has_kernel()) shape.resize(module.weight_shape.size(), 1);
  return shape;
}

void add_original(std::vector<OutputTensor>& out, const Module& module, const ResizeOptions& options) {
  for (const auto& [role, info] : module.tensors) {
    OutputTensor tensor;
    tensor.spec = {info->name, info->dtype, info->shape};
    tensor.input = info;
    if (options.dtype && is_factor(role) && info->dtype != *options.dtype) {
      tensor.source = OutputTensor::Source::convert;
      tensor.spec.dtype = *options.dtype;
    }
    out.push_back(std::move(tensor));
  }
}

void add_resized(std::vector<OutputTensor>& out, const ModulePlan& plan, std::size_t index,
                 const ResizeOptions& options) {
  const Module& module = *plan.module;
  OutputTensor down;
  down.spec = {module.down_name, factor_dtype(module, options, Role::down), down_shape(module, plan.rank)};
  down.source = OutputTensor::Source::factor_down;
  down.plan = index;
  out.push_back(std::move(down));
  OutputTensor up;
  up.spec = {module.up_name, factor_dtype(module, options, Role::up), up_shape(module, plan.rank)};
  up.source = OutputTensor::Source::factor_up;
  up.plan = index;
  out.push_back(std::move(up));
  const TensorInfo* alpha = module.tensor(Role::alpha);
  if (alpha != nullptr && plan.written_alpha && module.alpha_source == AlphaSource::tensor) {
    OutputTensor scalar;
    const std::string& name = module.kind == ModuleKind::lora || module.kind == ModuleKind::lora_tucker
                                  ? alpha->name
                                  : module.alpha_name;
    scalar.spec = {name, alpha_dtype(*alpha, options, *plan.written_alpha), alpha->shape};
    scalar.source = OutputTensor::Source::scalar;
    scalar.value = *plan.written_alpha;
    out.push_back(std::move(scalar));
  } else if (alpha != nullptr) {
    OutputTensor kept;
    kept.spec = {alpha->name, alpha->dtype, alpha->shape};
    kept.input = alpha;
    out.push_back(std::move(kept));
  }
  for (Role role : {Role::scale, Role::dora}) {
    if (const TensorInfo* info = module.tensor(role)) {
      OutputTensor kept;
      kept.spec = {info->name, info->dtype, info->shape};
      kept.input = info;
      out.push_back(std::move(kept));
    }
  }
}

bool has_key_prefix(const Metadata& metadata, std::string_view prefix) {
  return std::any_of(metadata.begin(), metadata.end(),
                     [&](const auto& entry) { return entry.first.starts_with(prefix); });
}

std::string training_comment(const Metadata& input, const std::vector<ModulePlan>& plans,
                             const ResizeOptions& options) {
  std::uint64_t largest_rank = 0;
  for (const ModulePlan& plan : plans) largest_rank = std::max(largest_rank, plan.module->rank);
  const auto old = input.find("ss_training_comment");
  const std::string old_comment = old == input.end() ? "" : old->second;
  if (has_target(options)) {
    const std::string target = options.target_size    ? fmt::format("target_size: {}", *options.target_size)
                               : options.target_ratio ? fmt::format("target_ratio: {}", python_float(*options.target_ratio))
                                                      : fmt::format("target_retention: {}",
                                                                    python_float(*options.target_retention));
    return fmt::format("Dynamic resize with {} ({}) from {}; {}", target, objective_name(options.objective),
                       largest_rank, old_comment);
  }
  if (options.method == RankMethod::fixed) {
    const std::uint64_t rank = options.rank.value_or(0);
    const std::string conv = options.conv_rank && *options.conv_rank != rank
                                 ? fmt::format(" (conv: {})", *options.conv_rank)
                                 : "";
    return fmt::format("dimension is resized from {} to {}{}; {}", largest_rank, rank, conv, old_comment);
  }
  return fmt::format("Dynamic resize with {}: {} from {}; {}", rank_method_name(options.method),
                     python_float(options.param), largest_rank, old_comment);
}

}  // namespace

std::vector<OutputTensor> module_outputs(const ModulePlan& plan, std::size_t index, const ResizeOptions& options) {
  std::vector<OutputTensor> out;
  if (plan.report.outcome == ModuleOutcome::dropped) return out;
  if (plan.emit_lora) {
    add_resized(out, plan, index, options);
  } else {
    add_original(out, *plan.module, options);
  }
  return out;
}

std::uint64_t module_output_bytes(const ModulePlan& plan, const ResizeOptions& options) {
  std::uint64_t bytes = 0;
  for (const OutputTensor& tensor : module_outputs(plan, 0, options)) bytes += tensor.spec.nbytes();
  return bytes;
}

std::vector<OutputTensor> output_tensors(const AdapterModel& model, const std::vector<ModulePlan>& plans,
                                         const ResizeOptions& options) {
  std::vector<OutputTensor> out;
  for (const TensorInfo* info : model.passthrough) {
    OutputTensor tensor;
    tensor.spec = {info->name, info->dtype, info->shape};
    tensor.input = info;
    out.push_back(std::move(tensor));
  }
  for (std::size_t i = 0; i < plans.size(); ++i) {
    std::vector<OutputTensor> module = module_outputs(plans[i], i, options);
    std::move(module.begin(), module.end(), std::back_inserter(out));
  }
  return out;
}

OutputMetadata output_metadata(const Header& header, const AdapterModel& model,
                               const std::vector<ModulePlan>& plans, const ResizeOptions& options) {
  OutputMetadata out;
  out.metadata = header.metadata;
  out.has_metadata = header.has_metadata;
  const bool alpha_tensors = std::any_of(plans.begin(), plans.end(), [](const ModulePlan& plan) {
    return plan.module->alpha_source == AlphaSource::tensor;
  });
  out.kohya_style = has_key_prefix(header.metadata, "ss_") || has_key_prefix(header.metadata, "sshs_") ||
                    (!model.peft && alpha_tensors);
  if (out.kohya_style) {
    out.has_metadata = true;
    if (options.method == RankMethod::fixed && !has_target(options)) {
      out.metadata["ss_network_dim"] = std::to_string(options.rank.value_or(0));
      // The reference records the alpha of the last module it processed (modules in name order).
      for (auto plan = plans.rbegin(); plan != plans.rend(); ++plan) {
        if (plan->report.new_alpha) {
          out.metadata["ss_network_alpha"] = python_float(*plan->report.new_alpha);
          break;
        }
      }
    } else {
      out.metadata["ss_network_dim"] = "Dynamic";
      out.metadata["ss_network_alpha"] = "Dynamic";
    }
    out.metadata["ss_training_comment"] = training_comment(header.metadata, plans, options);
  }
  if (model.peft) {
    PeftTargets targets;
    for (const ModulePlan& plan : plans) targets.add(plan.report);
    out.metadata[model.peft->metadata_key] = targets.rewrite(*model.peft);
  }
  return out;
}

OutputFile plan_output(const Header& header, const AdapterModel& model, const std::vector<ModulePlan>& plans,
                       const ResizeOptions& options) {
  OutputFile file;
  file.tensors = output_tensors(model, plans, options);
  file.metadata = output_metadata(header, model, plans, options);
  if (file.metadata.kohya_style) {
    // Fixed-length placeholders: the real hashes are known only after the data is written.
    file.metadata.metadata["sshs_model_hash"] = std::string(64, '0');
    file.metadata.metadata["sshs_legacy_hash"] = std::string(8, '0');
  }
  for (const OutputTensor& tensor : file.tensors) file.specs.push_back(tensor.spec);
  file.layout = plan_layout(file.specs, file.metadata.metadata, file.metadata.has_metadata);
  return file;
}

std::string python_float(double value) {
  // fmt's shortest round-trip form matches repr() (same digits, same switch to exponent notation)
  // except that repr() marks integral values with ".0".
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

}  // namespace lorakit::detail
