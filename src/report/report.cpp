#include "lorakit/report.hpp"
#include "lorakit/units.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <ostream>
#include <string>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace lorakit {
namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) { return fmt::format("{}", fmt::join(shape, "×")); }

std::string percent(double fraction) { return std::isnan(fraction) ? "n/a" : fmt::format("{:.1f}%", fraction * 100.0); }

std::string alpha_text(const std::optional<double>& alpha) { return alpha ? fmt::format("{:g}", *alpha) : "-"; }

void print_module(std::ostream& out, const ModuleReport& m) {
  fmt::print(out, "{:<75} | {:>14} | rank {:>4} → {:<4} | sum(S) retained: {:>6}, fro retained: {:>6}, "
                  "max(S) ratio: {:>6.1f} | alpha {} → {} | {}{}\n",
             m.stem, shape_text(m.weight_shape), m.old_rank, m.new_rank, percent(m.sum_retained),
             percent(m.fro_retained), m.max_ratio, alpha_text(m.old_alpha), alpha_text(m.new_alpha),
             module_outcome_name(m.outcome), m.note.empty() ? "" : " (" + m.note + ")");
}

// Dropped modules by name: at most a screenful, the rest counted (--verbose and --json list them all).
void print_dropped(std::ostream& out, const ResizeReport& report) {
  constexpr std::size_t kListed = 8;
  std::vector<std::string_view> names;
  for (const ModuleReport& m : report.modules) {
    if (m.outcome == ModuleOutcome::dropped) names.push_back(m.stem);
  }
  if (names.empty()) return;
  const std::size_t listed = std::min(names.size(), kListed);
  fmt::print(out, "dropped: {}{}\n", fmt::join(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(listed), ", "),
             names.size() > listed ? fmt::format(" and {} more", names.size() - listed) : "");
}

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? number_or_null(*value) : nlohmann::json(nullptr);
}

}  // namespace

std::string_view module_outcome_name(ModuleOutcome outcome) {
  switch (outcome) {
    case ModuleOutcome::resized: return "resized";
    case ModuleOutcome::unchanged: return "unchanged";
    case ModuleOutcome::kept: return "kept";
    case ModuleOutcome::excluded: return "excluded";
    case ModuleOutcome::dropped: return "dropped";
  }
  return "?";
}

void summarize(ResizeReport& report) {
  report.resized = report.unchanged = report.kept = report.excluded = report.dropped = 0;
  report.nonfinite = 0;
  double sum = 0.0, sum_squares = 0.0, energy = 0.0, kept_energy = 0.0;
  std::size_t counted = 0;
  for (const ModuleReport& m : report.modules) {
    switch (m.outcome) {
      case ModuleOutcome::resized: ++report.resized; break;
      case ModuleOutcome::unchanged: ++report.unchanged; break;
      case ModuleOutcome::kept: ++report.kept; break;
      case ModuleOutcome::excluded: ++report.excluded; break;
      case ModuleOutcome::dropped: ++report.dropped; break;
    }
    report.nonfinite += m.nonfinite;
    if (std::isnan(m.fro_retained)) continue;  // the reference excludes NaN (zero modules)
    sum += m.fro_retained;
    sum_squares += m.fro_retained * m.fro_retained;
    ++counted;
    energy += m.energy;
    kept_energy += m.energy * m.fro_retained * m.fro_retained;
  }
  const double n = static_cast<double>(counted);
  report.average_fro = counted ? sum / n : std::nan("");
  report.std_fro = counted ? std::sqrt(std::max(0.0, sum_squares / n - report.average_fro * report.average_fro))
                           : std::nan("");
  report.energy_weighted_fro = energy > 0.0 ? std::sqrt(kept_energy / energy) : std::nan("");
}

void print_report(std::ostream& out, const ResizeReport& report, bool verbose) {
  if (verbose) {
    for (const ModuleReport& m : report.modules) print_module(out, m);
  }
  fmt::print(out, "{} → {}\n", report.input, report.output.empty() ? "(not written)" : report.output);
  std::string filtered;
  if (report.excluded) filtered += fmt::format(", {} excluded", report.excluded);
  if (report.dropped) filtered += fmt::format(", {} dropped", report.dropped);
  fmt::print(out, "modules: {} resized, {} unchanged, {} kept{}; {} tensors passed through\n", report.resized,
             report.unchanged, report.kept, filtered, report.passthrough.size());
  print_dropped(out, report);
  const double ratio = report.input_bytes ? static_cast<double>(report.output_bytes) /
                                                static_cast<double>(report.input_bytes)
                                          : 0.0;
  fmt::print(out, "size: {} → {} ({:.1f}% of the input)\n", format_bytes(report.input_bytes),
             format_bytes(report.output_bytes), ratio * 100.0);
  if (report.target_bytes) {
    fmt::print(out, "target: at most {} ({} bytes); written {} bytes\n", format_bytes(*report.target_bytes),
               *report.target_bytes, report.output_bytes);
  }
  fmt::print(out, "Average Frobenius norm retention: {:.2f}% | std: {:0.3f}\n", report.average_fro * 100.0,
             report.std_fro);
  fmt::print(out, "Energy-weighted Frobenius retention: {:.2f}%\n", report.energy_weighted_fro * 100.0);
  if (report.nonfinite) fmt::print(out, "non-finite values: {} (modules kept unchanged)\n", report.nonfinite);
  for (const std::string& note : report.notes) fmt::print(out, "note: {}\n", note);
  fmt::print(out, "time: {:.2f} s\n", report.seconds);
}

std::string report_json(const ResizeReport& report) {
  nlohmann::json modules = nlohmann::json::array();
  for (const ModuleReport& m : report.modules) {
    modules.push_back({{"name", m.stem},
                       {"kind", m.kind},
                       {"family", m.family},
                       {"shape", m.weight_shape},
                       {"old_rank", m.old_rank},
                       {"new_rank", m.new_rank},
                       {"outcome", module_outcome_name(m.outcome)},
                       {"sum_retained", number_or_null(m.sum_retained)},
                       {"fro_retained", number_or_null(m.fro_retained)},
                       {"max_ratio", number_or_null(m.max_ratio)},
                       {"old_alpha", optional_json(m.old_alpha)},
                       {"new_alpha", optional_json(m.new_alpha)},
                       {"nonfinite", m.nonfinite},
                       {"note", m.note}});
  }
  const nlohmann::json json = {
      {"input", report.input},
      {"output", report.output},
      {"input_bytes", report.input_bytes},
      {"output_bytes", report.output_bytes},
      {"modules_resized", report.resized},
      {"modules_unchanged", report.unchanged},
      {"modules_kept", report.kept},
      {"modules_excluded", report.excluded},
      {"modules_dropped", report.dropped},
      {"target_bytes", report.target_bytes ? nlohmann::json(*report.target_bytes) : nlohmann::json(nullptr)},
      {"passthrough", report.passthrough},
      {"average_fro_retention", number_or_null(report.average_fro)},
      {"std_fro_retention", number_or_null(report.std_fro)},
      {"energy_weighted_fro_retention", number_or_null(report.energy_weighted_fro)},
      {"nonfinite", report.nonfinite},
      {"seconds", report.seconds},
      {"notes", report.notes},
      {"modules", modules},
  };
  return json.dump(2);
}

}  // namespace lorakit
