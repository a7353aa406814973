// The terminal summary of an analysis: what the file holds, then what it can become.
#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "lorakit/analysis.hpp"
#include "lorakit/report.hpp"
#include "lorakit/units.hpp"

namespace lorakit {
namespace {

constexpr std::size_t kPlotWidth = 64;
constexpr std::size_t kPlotHeight = 12;
constexpr std::size_t kListed = 12;       // rows of the module and dead-weight lists
constexpr std::size_t kColumnWidth = 6;   // heat-map cells

std::string percent(double fraction) { return std::isnan(fraction) ? "n/a" : fmt::format("{:.2f}%", fraction * 100.0); }

std::string rank_text(const std::optional<std::uint64_t>& rank) { return rank ? std::to_string(*rank) : "-"; }

void print_points(std::ostream& out, const Analysis& analysis) {
  fmt::print(out, "\nWhat it can become (exact sizes `lorakit resize` writes; mean: average Frobenius retention, "
                  "energy: the whole file's):\n");
  fmt::print(out, "  {:<50} {:>10} {:>8} {:>8}\n", "options", "size", "mean", "energy");
  fmt::print(out, "  {:<50} {:>10} {:>8} {:>8}\n", "(as it is)", format_bytes(analysis.inspection.file_size),
             "100.00%", "100.00%");
  auto rows = [&](const std::vector<MarkedPoint>& points) {
    for (const MarkedPoint& p : points) {
      const std::string what = p.options + (p.label.starts_with("budget") ? " (" + p.label + ")" : "");
      fmt::print(out, "  {:<50} {:>10} {:>8} {:>8}\n", what, format_bytes(p.bytes), percent(p.mean), percent(p.energy));
    }
  };
  rows(analysis.presets);
  rows(analysis.targets);
  rows(analysis.sv_fro);
}

// Size ↔ mean retention: the budget allocation's curve ('*') with the presets (H, M, L) and the sv_fro
// thresholds ('o') placed on it; x from 0 to the input's size, y from the lowest retention shown to 100%.
void print_plot(std::ostream& out, const Analysis& analysis) {
  if (analysis.mean_curve.empty()) return;
  const double x_max = static_cast<double>(analysis.inspection.file_size);
  double y_min = analysis.mean_curve.front().retention;
  for (const MarkedPoint& p : analysis.sv_fro) y_min = std::min(y_min, p.mean);
  y_min = std::floor(std::max(0.0, y_min) * 10.0) / 10.0;
  std::vector<std::string> grid(kPlotHeight, std::string(kPlotWidth, ' '));
  auto place = [&](std::uint64_t bytes, double retention, char mark) {
    if (std::isnan(retention)) return;
    const double x = std::clamp(static_cast<double>(bytes) / x_max, 0.0, 1.0);
    const double y = std::clamp((retention - y_min) / (1.0 - y_min), 0.0, 1.0);
    const auto column = static_cast<std::size_t>(std::lround(x * static_cast<double>(kPlotWidth - 1)));
    const auto row = static_cast<std::size_t>(std::lround((1.0 - y) * static_cast<double>(kPlotHeight - 1)));
    grid[row][column] = mark;
  };
  for (const CurvePoint& p : analysis.mean_curve) place(p.bytes, p.retention, '*');
  for (const MarkedPoint& p : analysis.sv_fro) place(p.bytes, p.mean, 'o');
  const char preset_marks[] = {'H', 'M', 'L'};
  for (std::size_t i = 0; i < analysis.presets.size() && i < std::size(preset_marks); ++i) {
    place(analysis.presets[i].bytes, analysis.presets[i].mean, preset_marks[i]);
  }
  fmt::print(out, "\nSize ↔ mean retention: * budget allocation (the best for each size), o sv_fro thresholds, "
                  "H/M/L presets\n");
  for (std::size_t row = 0; row < kPlotHeight; ++row) {
    const double y = 1.0 - (1.0 - y_min) * static_cast<double>(row) / static_cast<double>(kPlotHeight - 1);
    const bool labelled = row == 0 || row + 1 == kPlotHeight || row == kPlotHeight / 2;
    fmt::print(out, "  {:>5} |{}\n", labelled ? fmt::format("{:.0f}%", y * 100.0) : "", grid[row]);
  }
  fmt::print(out, "        +{}\n", std::string(kPlotWidth, '-'));
  fmt::print(out, "        0{:>{}}\n", format_bytes(analysis.inspection.file_size), kPlotWidth);
}

void print_heat_map(std::ostream& out, const HeatMap& heat) {
  if (heat.rows.empty()) return;
  fmt::print(out, "\nRank needed for 95% retention, {}: mean per block and layer (- none there):\n", heat.title);
  std::size_t label_width = 5;
  for (const std::string& row : heat.rows) label_width = std::max(label_width, row.size());
  fmt::print(out, "  {:<{}}", "", label_width);
  for (std::size_t c = 0; c < heat.columns.size(); ++c) fmt::print(out, "{:>{}}", fmt::format("L{}", c + 1), kColumnWidth);
  fmt::print(out, "\n");
  for (std::size_t r = 0; r < heat.rows.size(); ++r) {
    fmt::print(out, "  {:<{}}", heat.rows[r], label_width);
    for (const std::optional<double>& cell : heat.rank_95[r]) {
      fmt::print(out, "{:>{}}", cell ? fmt::format("{:.0f}", *cell) : "-", kColumnWidth);
    }
    fmt::print(out, "\n");
  }
  fmt::print(out, "  layers:");
  for (std::size_t c = 0; c < heat.columns.size(); ++c) fmt::print(out, " L{} {}{}", c + 1, heat.columns[c], c + 1 < heat.columns.size() ? "," : "");
  fmt::print(out, "\n");
}

void print_dead_weight(std::ostream& out, const Analysis& analysis) {
  const std::vector<const ModuleAnalysis*> dead = dead_weight(analysis);
  fmt::print(out, "\nDead weight: {} modules keep 95% with at most {} ranks: {} ({:.1f}% of the file)\n", dead.size(),
             kDeadWeightRank, format_bytes(analysis.dead_bytes), analysis.dead_share * 100.0);
  for (std::size_t i = 0; i < std::min(dead.size(), kListed); ++i) {
    fmt::print(out, "  {:<72} rank {:>4} → {} for 95%, {}\n", dead[i]->stem, dead[i]->rank, rank_text(dead[i]->ranks_needed[1]),
               format_bytes(dead[i]->bytes));
  }
  if (dead.size() > kListed) fmt::print(out, "  … and {} more (--json or --html list them all)\n", dead.size() - kListed);
}

void print_modules(std::ostream& out, const Analysis& analysis) {
  const std::vector<const ModuleAnalysis*> order = modules_by_energy(analysis);
  fmt::print(out, "\nModules by energy share (rank needed for 90 / 95 / 99% retention):\n");
  fmt::print(out, "  {:<72} {:>5} {:>5} {:>5} {:>5} {:>8} {:>10}\n", "module", "rank", "90%", "95%", "99%", "energy", "size");
  for (std::size_t i = 0; i < std::min(order.size(), kListed); ++i) {
    const ModuleAnalysis& m = *order[i];
    fmt::print(out, "  {:<72} {:>5} {:>5} {:>5} {:>5} {:>8} {:>10}\n", m.stem, m.rank, rank_text(m.ranks_needed[0]),
               rank_text(m.ranks_needed[1]), rank_text(m.ranks_needed[2]),
               std::isnan(m.energy_share) ? "n/a" : fmt::format("{:.2f}%", m.energy_share * 100.0), format_bytes(m.bytes));
  }
  if (order.size() > kListed) fmt::print(out, "  … and {} more (--json or --html list them all)\n", order.size() - kListed);
}

}  // namespace

void print_analysis(std::ostream& out, const Analysis& analysis) {
  print_inspection(out, analysis.inspection);
  print_points(out, analysis);
  print_plot(out, analysis);
  for (const HeatMap& heat : analysis.heat_maps) print_heat_map(out, heat);
  print_dead_weight(out, analysis);
  print_modules(out, analysis);
  for (const std::string& note : analysis.notes) fmt::print(out, "note: {}\n", note);
}

}  // namespace lorakit
