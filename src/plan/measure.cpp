#include "plan/measure.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "plan/module_factors.hpp"
#include "plan/module_filter.hpp"
#include "plan/parallel.hpp"
#include "plan/target_plan.hpp"

namespace lorakit::detail {

std::vector<std::size_t> largest_first(const std::vector<Module>& modules, std::vector<std::size_t> indices) {
  std::vector<double> cost(modules.size());
  for (std::size_t i : indices) {
    const auto inner = static_cast<double>(rank_bound(modules[i]));
    cost[i] = static_cast<double>(modules[i].out_features() + modules[i].in_flat()) * inner * inner;
  }
  std::stable_sort(indices.begin(), indices.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
  return indices;
}

AdapterModel load_modules(const Reader& reader, const PeftSidecar* sidecar) {
  AdapterModel model = read_adapter_model(reader, sidecar);
  if (model.modules.empty()) {
    throw Error(ErrorCode::not_an_adapter, reader.path().string(), "",
                fmt::format("no LoRA/LyCORIS module among its {} tensors", reader.header().tensors.size()));
  }
  return model;
}

RankDecider always(RankDecision decision) {
  return [decision](std::span<const double>, std::uint64_t) { return decision; };
}

std::vector<ModulePlan> measure_modules(const Reader& reader, const AdapterModel& model, const ResizeOptions& options,
                                        const std::function<void(std::size_t done)>& done) {
  const ModuleFilter filter(options);
  std::vector<std::size_t> all(model.modules.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const std::vector<std::size_t> order = largest_first(model.modules, std::move(all));
  std::vector<ModulePlan> plans(model.modules.size());
  parallel_for(
      order.size(), resolve_threads(options.threads),
      [&](std::size_t n) {
        const Module& module = model.modules[order[n]];
        ModulePlan& plan = plans[order[n]];
        if (filter.select(module).selection == Selection::drop) {
          plan = dropped_by_filter(module);
          return;
        }
        plan = plan_module(reader, module, options, always({ModuleOutcome::unchanged, 0, {}}));
        plan.product.reset();  // no directions were computed: only σ, which the plan keeps
        plan.kron.reset();
      },
      done);
  return plans;
}

std::vector<ModulePlan> plans_for(const Header& header, const AdapterModel& model,
                                  const std::vector<ModulePlan>& measured, const ResizeOptions& options,
                                  std::uint64_t input_size) {
  const ModuleFilter filter(options);
  const bool target = has_target(options);
  std::vector<ModulePlan> plans = measured;
  for (ModulePlan& plan : plans) {
    const Module& module = *plan.module;
    const Selected selected = filter.select(module);
    if (selected.selection == Selection::drop) {
      plan = dropped_by_filter(module);
    } else if (!open_for_target(plan)) {
      continue;  // non-finite, --keep-lycoris: final already
    } else if (selected.selection == Selection::exclude) {
      apply_decision(plan, {ModuleOutcome::excluded, 0, std::string(selected.note)});
    } else if (!target) {
      apply_decision(plan, decide_by_rule(module, options, *plan.sigma, plan.report.old_rank));
    }
  }
  if (!target) return plans;
  return with_decisions(plans, decide_for_target(header, model, plans, options, input_size));
}

}  // namespace lorakit::detail
