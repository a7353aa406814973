// analyze_file: one measuring pass over the modules, then every preset, threshold and target planned
// exactly from the spectra (plan/measure.hpp), and the budget allocation's frontier for both objectives.
#include "lorakit/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "analysis/blocks.hpp"
#include "lorakit/error.hpp"
#include "lorakit/report.hpp"
#include "plan/measure.hpp"
#include "plan/output_plan.hpp"
#include "plan/target_plan.hpp"

namespace lorakit {
namespace {

constexpr double kSvFroThresholds[] = {0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99};
constexpr double kTargetRatios[] = {0.1, 0.25, 0.5};
constexpr double kTargetRetentions[] = {0.9, 0.95, 0.99};
constexpr std::size_t kCurvePoints = 400;  // a curve is drawn from at most this many points

struct Measured {
  const Reader& reader;
  const AdapterModel& model;
  std::vector<detail::ModulePlan> plans;
};

std::uint64_t stored_bytes(const Module& module) {
  std::uint64_t bytes = 0;
  for (const auto& [role, info] : module.tensors) bytes += info->nbytes();
  return bytes;
}

// The smallest rank keeping `level` of the fro norm: the sv_fro rule without the reference's "+1".
std::optional<std::uint64_t> rank_needed(const detail::ModulePlan& plan, double level) {
  if (!plan.sigma || plan.sigma->empty()) return std::nullopt;
  const Module& module = *plan.module;
  RankRule rule;
  rule.method = RankMethod::sv_fro;
  rule.param = level;
  rule.minimal = true;
  return choose_rank(*plan.sigma, std::min(module.out_features(), module.in_flat()), plan.report.old_rank, rule);
}

std::vector<ModuleAnalysis> module_rows(const Measured& measured) {
  double total_energy = 0.0;
  for (const detail::ModulePlan& plan : measured.plans) {
    if (plan.sigma) total_energy += plan.report.energy;
  }
  std::vector<ModuleAnalysis> rows;
  for (const detail::ModulePlan& plan : measured.plans) {
    ModuleAnalysis row;
    row.stem = plan.report.stem;
    row.kind = plan.report.kind;
    row.weight_shape = plan.report.weight_shape;
    row.rank = plan.report.old_rank;
    row.bytes = stored_bytes(*plan.module);
    row.energy = plan.sigma ? plan.report.energy : std::nan("");
    row.energy_share = plan.sigma && total_energy > 0.0 ? row.energy / total_energy : std::nan("");
    for (std::size_t i = 0; i < std::size(kRetentionLevels); ++i) row.ranks_needed[i] = rank_needed(plan, kRetentionLevels[i]);
    row.dead = row.ranks_needed[1] && *row.ranks_needed[1] <= kDeadWeightRank && *row.ranks_needed[1] < row.rank;
    detail::BlockPlace place = detail::block_place(row.stem);
    row.component = std::move(place.component);
    row.block = std::move(place.block);
    row.part = std::move(place.part);
    rows.push_back(std::move(row));
  }
  return rows;
}

bool is_unet_block(const std::string& block) {
  for (const char* stage : {"down", "up", "input", "output", "mid"}) {
    if (block.starts_with(stage)) return true;
  }
  return false;
}

// The heat map of one component's modules (rows[i] for i in `members`).
HeatMap heat_map(const std::vector<ModuleAnalysis>& rows, const std::vector<std::size_t>& members) {
  using RowKey = std::tuple<int, int, int, std::string>;  // the architecture's order, then the label
  std::vector<RowKey> keys(rows.size());
  std::map<RowKey, std::size_t> row_index;
  std::map<std::string, std::size_t> column_index;
  HeatMap heat;
  for (std::size_t i : members) {
    const detail::BlockPlace place = detail::block_place(rows[i].stem);
    keys[i] = {place.order[0], place.order[1], place.order[2], rows[i].block};
    row_index.try_emplace(keys[i], 0);
    if (column_index.try_emplace(rows[i].part, heat.columns.size()).second) heat.columns.push_back(rows[i].part);
  }
  for (auto& [key, index] : row_index) {
    index = heat.rows.size();
    heat.rows.push_back(std::get<3>(key));
  }
  const std::size_t width = heat.columns.size();
  std::vector<std::vector<double>> sums(heat.rows.size(), std::vector<double>(width, 0.0));
  std::vector<std::vector<std::size_t>> measured(heat.rows.size(), std::vector<std::size_t>(width, 0));
  heat.modules.assign(heat.rows.size(), std::vector<std::size_t>(width, 0));
  for (std::size_t i : members) {
    const std::size_t r = row_index.at(keys[i]);
    const std::size_t c = column_index.at(rows[i].part);
    ++heat.modules[r][c];
    if (rows[i].ranks_needed[1]) {
      sums[r][c] += static_cast<double>(*rows[i].ranks_needed[1]);
      ++measured[r][c];
    }
  }
  heat.rank_95.assign(heat.rows.size(), std::vector<std::optional<double>>(width));
  for (std::size_t r = 0; r < heat.rows.size(); ++r) {
    for (std::size_t c = 0; c < width; ++c) {
      if (measured[r][c] > 0) heat.rank_95[r][c] = sums[r][c] / static_cast<double>(measured[r][c]);
    }
  }
  return heat;
}

// The denoiser's heat map, then one per text encoder.
std::vector<HeatMap> heat_maps(const std::vector<ModuleAnalysis>& rows) {
  std::map<std::string, std::vector<std::size_t>> components;  // "" (the denoiser) sorts first
  for (std::size_t i = 0; i < rows.size(); ++i) components[rows[i].component].push_back(i);
  std::vector<HeatMap> maps;
  for (const auto& [component, members] : components) {
    HeatMap heat = heat_map(rows, members);
    const bool unet = std::any_of(heat.rows.begin(), heat.rows.end(), is_unet_block);
    heat.title = component.empty() ? (unet ? "UNet" : "transformer") : "text encoder " + component;
    maps.push_back(std::move(heat));
  }
  return maps;
}

// The point `options` produce, exactly as `lorakit resize --dry-run` would report it; none when a target
// cannot be met.
std::optional<MarkedPoint> point(const Measured& measured, std::string label, std::string flags,
                                 const ResizeOptions& options) {
  std::vector<detail::ModulePlan> plans;
  try {
    plans = detail::plans_for(measured.reader.header(), measured.model, measured.plans, options,
                              measured.reader.file_size());
  } catch (const Error& e) {
    if (e.code() == ErrorCode::target_unreachable) return std::nullopt;
    throw;
  }
  ResizeReport report;
  for (const detail::ModulePlan& plan : plans) report.modules.push_back(plan.report);
  summarize(report);
  const std::uint64_t bytes =
      detail::plan_output(measured.reader.header(), measured.model, plans, options).layout.file_size();
  return MarkedPoint{std::move(label), std::move(flags), bytes, report.average_fro, report.energy_weighted_fro};
}

std::string fraction_text(double value) { return fmt::format("{:g}", value); }

std::vector<MarkedPoint> preset_points(const Measured& measured) {
  std::vector<MarkedPoint> points;
  for (const Preset preset : {Preset::high, Preset::med, Preset::low}) {
    ResizeOptions options;
    options.method = RankMethod::sv_fro;
    options.param = preset_sv_fro(preset);
    const std::string name(preset_name(preset));
    points.push_back(*point(measured, name, "--preset " + name, options));
  }
  return points;
}

std::vector<MarkedPoint> sv_fro_points(const Measured& measured) {
  std::vector<MarkedPoint> points;
  for (const double threshold : kSvFroThresholds) {
    ResizeOptions options;
    options.method = RankMethod::sv_fro;
    options.param = threshold;
    const std::string param = fmt::format("{:.2f}", threshold);
    points.push_back(*point(measured, "sv_fro " + param, "--method sv_fro --param " + param, options));
  }
  return points;
}

std::vector<MarkedPoint> target_points(const Measured& measured, const std::vector<MarkedPoint>& presets,
                                       std::vector<std::string>& notes) {
  std::vector<std::pair<std::string, std::pair<std::string, ResizeOptions>>> wanted;
  for (const MarkedPoint& preset : presets) {
    ResizeOptions options;
    options.target_size = preset.bytes;
    wanted.push_back({"budget at " + preset.label + "'s size", {fmt::format("--target-size {}", preset.bytes), options}});
  }
  for (const double ratio : kTargetRatios) {
    ResizeOptions options;
    options.target_ratio = ratio;
    wanted.push_back({fmt::format("target {:g}%", ratio * 100.0), {"--target-ratio " + fraction_text(ratio), options}});
  }
  for (const double retention : kTargetRetentions) {
    ResizeOptions options;
    options.target_retention = retention;
    wanted.push_back({fmt::format("target {:g}% mean", retention * 100.0),
                      {"--target-retention " + fraction_text(retention), options}});
  }
  std::vector<MarkedPoint> points;
  for (auto& [label, flags_and_options] : wanted) {
    auto& [flags, options] = flags_and_options;
    if (std::optional<MarkedPoint> p = point(measured, label, flags, options)) {
      points.push_back(std::move(*p));
    } else {
      notes.push_back(fmt::format("{} ({}) cannot be met by this file", label, flags));
    }
  }
  return points;
}

// The frontier thinned to at most kCurvePoints points, evenly by size, the ends kept.
std::vector<CurvePoint> curve(const Measured& measured, Objective objective) {
  ResizeOptions options;
  options.objective = objective;
  const std::vector<detail::FrontierSample> samples =
      detail::target_frontier(measured.reader.header(), measured.model, measured.plans, options);
  std::vector<CurvePoint> points;
  if (samples.empty()) return points;
  const double first = static_cast<double>(samples.front().bytes);
  const double step = (static_cast<double>(samples.back().bytes) - first) / static_cast<double>(kCurvePoints - 1);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const bool end = i + 1 == samples.size();
    const bool due = points.empty() || static_cast<double>(samples[i].bytes) >= first + step * static_cast<double>(points.size());
    if (end || due) points.push_back({samples[i].bytes, samples[i].retention});
  }
  return points;
}

}  // namespace

Analysis analyze_file(const std::filesystem::path& input, unsigned threads, const PeftSidecar* sidecar) {
  const Reader reader(input);
  const AdapterModel model = detail::load_modules(reader, sidecar);
  ResizeOptions options;
  options.threads = threads;
  Measured measured{reader, model, detail::measure_modules(reader, model, options, {})};

  Analysis analysis;
  analysis.inspection = inspect_model(reader.header(), model, input.string(), reader.file_size());
  if (sidecar != nullptr) analysis.inspection.peft_sidecar = sidecar->path.string();
  analysis.modules = module_rows(measured);
  analysis.heat_maps = heat_maps(analysis.modules);
  for (const ModuleAnalysis& row : analysis.modules) {
    if (row.dead) analysis.dead_bytes += row.bytes;
  }
  analysis.dead_share = static_cast<double>(analysis.dead_bytes) / static_cast<double>(reader.file_size());
  analysis.mean_curve = curve(measured, Objective::mean);
  analysis.energy_curve = curve(measured, Objective::energy);
  analysis.presets = preset_points(measured);
  analysis.sv_fro = sv_fro_points(measured);
  analysis.targets = target_points(measured, analysis.presets, analysis.notes);
  const auto unmeasured = std::count_if(measured.plans.begin(), measured.plans.end(),
                                        [](const detail::ModulePlan& plan) { return !plan.sigma; });
  if (unmeasured > 0) {
    analysis.notes.push_back(fmt::format("{} modules could not be measured (non-finite values) and stay as they are",
                                         unmeasured));
  }
  return analysis;
}

std::vector<const ModuleAnalysis*> modules_by_energy(const Analysis& analysis) {
  std::vector<const ModuleAnalysis*> order;
  for (const ModuleAnalysis& m : analysis.modules) order.push_back(&m);
  const auto share = [](const ModuleAnalysis* m) { return std::isnan(m->energy_share) ? -1.0 : m->energy_share; };
  std::stable_sort(order.begin(), order.end(), [&](const auto* a, const auto* b) { return share(a) > share(b); });
  return order;
}

std::vector<const ModuleAnalysis*> dead_weight(const Analysis& analysis) {
  std::vector<const ModuleAnalysis*> dead;
  for (const ModuleAnalysis& m : analysis.modules) {
    if (m.dead) dead.push_back(&m);
  }
  std::stable_sort(dead.begin(), dead.end(), [](const auto* a, const auto* b) { return a->bytes > b->bytes; });
  return dead;
}

}  // namespace lorakit
