#include "plan/target_plan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "lorakit/budget.hpp"
#include "lorakit/error.hpp"
#include "lorakit/report.hpp"
#include "lorakit/units.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {
namespace {

bool is_lycoris(ModuleKind kind) { return kind != ModuleKind::lora && kind != ModuleKind::lora_tucker; }

std::string size_text(std::uint64_t bytes) { return fmt::format("{} ({} bytes)", format_bytes(bytes), bytes); }

// The decisions a target may take for an open module, cheapest-rank first.
std::vector<RankDecision> candidate_decisions(const ModulePlan& plan, const ResizeOptions& options) {
  const Module& module = *plan.module;
  const bool lycoris = is_lycoris(module.kind);
  const std::uint64_t own_rank = plan.report.old_rank;
  const RankRule rule = rank_rule_for(options, module.has_kernel());
  const std::uint64_t cap = rule.cap.value_or(own_rank);
  const std::uint64_t lowest = std::max<std::uint64_t>(1, rule.floor);
  // LoRA-form ranks beyond the numerical rank keep nothing more; a plain LoRA at its own rank is its own form.
  const std::uint64_t numerical = std::max<std::uint64_t>(lowest, plan.sigma->size());
  const std::uint64_t highest = std::min({cap, lycoris ? own_rank : own_rank - 1, numerical});
  std::vector<RankDecision> decisions;
  for (std::uint64_t k = lowest; k <= highest; ++k) decisions.push_back({ModuleOutcome::resized, k, {}});
  if (cap >= own_rank && !(lycoris && options.to_lora)) {
    decisions.push_back(lycoris ? RankDecision{ModuleOutcome::kept, 0,
                                               fmt::format("kept as {}: the target's choice", plan.report.kind)}
                                : RankDecision{ModuleOutcome::unchanged, 0, {}});
  }
  if (options.allow_drop) decisions.push_back({ModuleOutcome::dropped, 0, "dropped by the target (--allow-drop)"});
  return decisions;
}

// What the report's objective counts of a module (NaN-free: a module the summary leaves out counts 0).
double objective_value(const ModuleReport& report, Objective objective) {
  const double fro = report.fro_retained;
  if (std::isnan(fro)) return 0.0;
  return objective == Objective::mean ? fro : report.energy * fro * fro;
}

double report_objective(const ResizeReport& report, Objective objective) {
  return objective == Objective::mean ? report.average_fro : report.energy_weighted_fro;
}

class TargetPlanner {
 public:
  TargetPlanner(const Header& header, const AdapterModel& model, const std::vector<ModulePlan>& probed,
                const ResizeOptions& options)
      : header_(header), model_(model), probed_(probed), options_(options) {
    decisions_.resize(probed.size());
    for (std::size_t i = 0; i < probed.size(); ++i) {
      const ModulePlan& plan = probed[i];
      decisions_[i] = {plan.report.outcome, plan.report.new_rank, plan.report.note};
      if (open_for_target(plan)) add_open(i);
    }
  }

  std::vector<RankDecision> within(std::uint64_t target) const {
    const Allocation cheapest = base();
    const Layout smallest = layout_of(cheapest);
    if (smallest.file_size() > target) {
      throw Error(ErrorCode::target_unreachable,
                  fmt::format("the target size {} is below the smallest file these options allow, {}{}",
                              size_text(target), size_text(smallest.file_size()),
                              options_.allow_drop ? "" : " (--allow-drop lets the target remove modules)"));
    }
    // Bytes outside the open modules: the header (its length depends on the ranks: start from the
    // cheapest's and add what a try overshot, until one fits) and the data of everything else.
    const std::uint64_t other_data = smallest.data_size - cheapest.cost;
    std::uint64_t outside = smallest.prefix.size() + other_data;
    Allocation best = cheapest;
    while (outside < target) {
      const std::optional<Allocation> tried = allocate_within(choices_, target - outside);
      if (!tried) break;
      const std::uint64_t size = layout_of(*tried).file_size();
      if (size <= target) {
        best = *tried;
        break;
      }
      outside += size - target;
    }
    fill_exactly(best, target);
    return decisions_for(best);
  }

  std::vector<RankDecision> reaching(double target) const {
    const Totals totals = fixed_totals();
    const double counted = static_cast<double>(totals.counted);
    double needed = options_.objective == Objective::mean ? target * counted - totals.mean_sum
                                                          : target * target * totals.energy - totals.kept_energy;
    // The allocator's sums are in another order than the report's: confirm with the report, and ask for a
    // hair more when rounding left it short.
    for (int attempt = 0; attempt < 8; ++attempt) {
      const std::optional<Allocation> allocation = allocate_to_reach(choices_, needed);
      if (!allocation) break;
      const std::vector<RankDecision> decisions = decisions_for(*allocation);
      if (report_objective(summary(decisions), options_.objective) >= target) return decisions;
      needed += std::max(std::abs(needed), 1.0) * 1e-12 * std::ldexp(1.0, 2 * attempt);
    }
    const ResizeReport best = summary(decisions_for(best_allocation()));
    throw Error(ErrorCode::target_unreachable,
                fmt::format("the target retention {:.2f}% ({}) is above the best these options allow, {:.2f}%",
                            target * 100.0, objective_name(options_.objective),
                            report_objective(best, options_.objective) * 100.0));
  }

  std::vector<FrontierSample> frontier() const {
    const Allocation cheapest = base();
    const std::uint64_t outside = layout_of(cheapest).file_size() - cheapest.cost;
    const Totals totals = fixed_totals();
    std::vector<FrontierSample> samples;
    for (const FrontierPoint& point : lorakit::frontier(choices_)) {
      const double retention = options_.objective == Objective::mean
                                   ? (totals.mean_sum + point.value) / static_cast<double>(totals.counted)
                                   : std::sqrt((totals.kept_energy + point.value) / totals.energy);
      samples.push_back({point.cost + outside, retention});
    }
    return samples;
  }

 private:
  struct Totals {
    std::size_t counted = 0;   // modules the report's mean counts
    double mean_sum = 0.0;     // Σ fro of the fixed ones
    double energy = 0.0;       // Σ energy of all counted modules
    double kept_energy = 0.0;  // Σ kept energy of the fixed ones
  };

  void add_open(std::size_t index) {
    const ModulePlan& plan = probed_[index];
    ModulePlan scratch = plan;
    std::vector<RankDecision> candidates = candidate_decisions(plan, options_);
    Choices choices;
    for (const RankDecision& decision : candidates) {
      apply_decision(scratch, decision);
      choices.push_back({module_output_bytes(scratch, options_), objective_value(scratch.report, options_.objective)});
    }
    open_.push_back(index);
    candidates_.push_back(std::move(candidates));
    choices_.push_back(std::move(choices));
  }

  Allocation base() const {
    Allocation allocation;
    for (const Choices& choices : choices_) {
      const auto cheapest = std::min_element(choices.begin(), choices.end(), [](const Choice& a, const Choice& b) {
        return a.cost < b.cost || (a.cost == b.cost && a.value > b.value);
      });
      allocation.picks.push_back(static_cast<std::size_t>(cheapest - choices.begin()));
      allocation.cost += cheapest->cost;
      allocation.value += cheapest->value;
    }
    return allocation;
  }

  Allocation best_allocation() const {
    return *allocate_within(choices_, std::numeric_limits<std::uint64_t>::max() / 4);
  }

  std::vector<RankDecision> decisions_for(const Allocation& allocation) const {
    std::vector<RankDecision> decisions = decisions_;
    for (std::size_t j = 0; j < open_.size(); ++j) decisions[open_[j]] = candidates_[j][allocation.picks[j]];
    return decisions;
  }

  Layout layout_of(const Allocation& allocation) const {
    return plan_output(header_, model_, with_decisions(probed_, decisions_for(allocation)), options_).layout;
  }

  ResizeReport summary(const std::vector<RankDecision>& decisions) const {
    ResizeReport report;
    for (const ModulePlan& plan : with_decisions(probed_, decisions)) report.modules.push_back(plan.report);
    summarize(report);
    return report;
  }

  Totals fixed_totals() const {
    Totals totals;
    std::vector<bool> open(probed_.size(), false);
    for (std::size_t index : open_) open[index] = true;
    for (std::size_t i = 0; i < probed_.size(); ++i) {
      const ModuleReport& report = probed_[i].report;
      if (std::isnan(report.fro_retained)) continue;  // a zero module stays out of the mean whatever its rank
      ++totals.counted;
      totals.energy += report.energy;
      if (open[i]) continue;
      totals.mean_sum += report.fro_retained;
      totals.kept_energy += report.energy * report.fro_retained * report.fro_retained;
    }
    return totals;
  }

  // Bytes the header allowance left over: single upgrades, largest gain first, each checked exactly.
  void fill_exactly(Allocation& allocation, std::uint64_t target) const {
    constexpr int kMaxMisses = 16;  // upgrades that fit by their data but not with the header they change
    std::uint64_t size = layout_of(allocation).file_size();
    std::uint64_t max_extra = target - size;
    for (int misses = 0; misses < kMaxMisses && max_extra > 0;) {
      std::optional<std::pair<std::size_t, std::size_t>> best;
      double best_gain = 0.0;
      for (std::size_t j = 0; j < choices_.size(); ++j) {
        const Choice& current = choices_[j][allocation.picks[j]];
        for (std::size_t c = 0; c < choices_[j].size(); ++c) {
          const Choice& candidate = choices_[j][c];
          const double gain = candidate.value - current.value;
          if (gain <= best_gain || candidate.cost > current.cost + max_extra) continue;
          best = {j, c};
          best_gain = gain;
        }
      }
      if (!best) return;
      const auto [module, pick] = *best;
      const Choice& from = choices_[module][allocation.picks[module]];
      const Choice& to = choices_[module][pick];
      Allocation tried = allocation;
      tried.picks[module] = pick;
      tried.cost = tried.cost - from.cost + to.cost;
      tried.value += to.value - from.value;
      const std::uint64_t tried_size = layout_of(tried).file_size();
      if (tried_size <= target) {
        allocation = tried;
        size = tried_size;
        max_extra = std::min(max_extra, target - size);
      } else {
        ++misses;
        const std::uint64_t extra = to.cost > from.cost ? to.cost - from.cost : 0;
        max_extra = extra > 0 ? extra - 1 : 0;  // from now on only upgrades of fewer bytes
      }
    }
  }

  const Header& header_;
  const AdapterModel& model_;
  const std::vector<ModulePlan>& probed_;
  const ResizeOptions& options_;
  std::vector<RankDecision> decisions_;               // every module's; the open ones are overwritten
  std::vector<std::size_t> open_;                     // indices of the open modules
  std::vector<std::vector<RankDecision>> candidates_;  // per open module
  std::vector<Choices> choices_;                      // per open module, parallel to candidates_
};

}  // namespace

bool open_for_target(const ModulePlan& probed) {
  return probed.sigma.has_value() && probed.report.outcome == ModuleOutcome::unchanged;
}

std::vector<ModulePlan> with_decisions(const std::vector<ModulePlan>& probed,
                                       const std::vector<RankDecision>& decisions) {
  std::vector<ModulePlan> plans = probed;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].sigma) apply_decision(plans[i], decisions[i]);
  }
  return plans;
}

std::vector<FrontierSample> target_frontier(const Header& header, const AdapterModel& model,
                                            const std::vector<ModulePlan>& probed, const ResizeOptions& options) {
  return TargetPlanner(header, model, probed, options).frontier();
}

std::uint64_t target_bytes(const ResizeOptions& options, std::uint64_t input_size) {
  if (options.target_size) return *options.target_size;
  return static_cast<std::uint64_t>(std::floor(*options.target_ratio * static_cast<double>(input_size)));
}

std::vector<RankDecision> decide_for_target(const Header& header, const AdapterModel& model,
                                            const std::vector<ModulePlan>& probed, const ResizeOptions& options,
                                            std::uint64_t input_size) {
  const TargetPlanner planner(header, model, probed, options);
  if (options.target_retention) return planner.reaching(*options.target_retention);
  return planner.within(target_bytes(options, input_size));
}

}  // namespace lorakit::detail
