// The analysis as one self-contained HTML page, and a collection's overview page (batch --html): inline
// SVG and CSS only, no script, no font or image from anywhere, so that a page mailed or archived still
// renders the same offline. Colours come from CSS variables switched by prefers-color-scheme.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "lorakit/analysis.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"
#include "lorakit/units.hpp"

namespace lorakit {
namespace {

constexpr const char* kStyle = R"(
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1f24; --muted: #5b6470; --line: #d6dae0;
  --panel: #f5f7f9; --mean: #1f6fd1; --energy: #b4417f; --preset: #1a7f37; --fro: #8250df; --target: #bf5b04;
  --hot: #c2410c; --on-hot: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1216; --fg: #e4e8ee; --muted: #98a2ae; --line: #2f3640; --panel: #171b21; --mean: #5aa2ff;
    --energy: #f07ab8; --preset: #4fc46b; --fro: #b392f0; --target: #f0a04b; --hot: #fb923c; --on-hot: #111111; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 20px 24px 48px; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.45em; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 1.15em; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.lead, .muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-word; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.name { overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: 0.9em; }
#files td.name { min-width: 18em; }
a { color: var(--mean); }
code { font-family: ui-monospace, monospace; font-size: 0.9em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figcaption { font-weight: 600; margin: 0 0 4px 4px; }
svg { display: block; width: 100%; height: auto; }
svg text { fill: var(--muted); font: 11px system-ui, sans-serif; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .curve { fill: none; stroke-width: 2.2; }
svg .mean { stroke: var(--mean); } svg .energy { stroke: var(--energy); }
svg .preset { fill: var(--preset); } svg .fro { fill: var(--fro); } svg .target { fill: var(--target); }
svg text.mark { fill: var(--fg); font-weight: 600; }
svg rect.cell { fill: var(--hot); } svg text.cell { fill: var(--fg); text-anchor: middle; }
svg text.cell.hi { fill: var(--on-hot); }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 6px 4px 0; color: var(--muted); font-size: 0.9em; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
.scroll { overflow-x: auto; }
.status-ok { color: var(--preset); } .status-failed { color: var(--energy); }
)";

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A relative path as a URL path: every byte but unreserved characters and '/' percent-encoded, so that
// names with spaces, '#', '?' or '%' still link to their file.
std::string url_path(std::string_view path) {
  std::string out;
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

std::string percent(double fraction) {
  return std::isfinite(fraction) ? fmt::format("{:.2f}%", fraction * 100.0) : "n/a";
}

std::string rank_text(const std::optional<std::uint64_t>& rank) { return rank ? std::to_string(*rank) : "–"; }

std::string page_start(std::string_view title) {
  return fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
                     escape(title), kStyle);
}

constexpr std::string_view kPageEnd = "</body>\n</html>\n";

// ---- The size ↔ retention chart -----------------------------------------------------------------

constexpr double kChartWidth = 640, kChartHeight = 330;
constexpr double kLeft = 52, kRight = 18, kTop = 14, kBottom = 38;

// Maps bytes and retention to the chart's plot area: x from 0 to the input's size, y from y_min to 100%.
struct ChartScale {
  double x_max = 1.0;
  double y_min = 0.0;
  double x(std::uint64_t bytes) const {
    return kLeft + std::clamp(static_cast<double>(bytes) / x_max, 0.0, 1.0) * (kChartWidth - kLeft - kRight);
  }
  double y(double retention) const {
    const double t = std::clamp((retention - y_min) / (1.0 - y_min), 0.0, 1.0);
    return kTop + (1.0 - t) * (kChartHeight - kTop - kBottom);
  }
};

// Which objective a chart shows: the curve and each marked point's value for it.
enum class Shown { mean, energy };

double shown_value(const MarkedPoint& point, Shown shown) { return shown == Shown::mean ? point.mean : point.energy; }

// The lowest finite retention of a curve, or `start` when that is lower.
double lowest_retention(const std::vector<CurvePoint>& curve, double start) {
  for (const CurvePoint& p : curve) start = std::isfinite(p.retention) ? std::min(start, p.retention) : start;
  return start;
}

// A retention axis starts at the tenth below its lowest value, and spans at least 10%.
double axis_floor(double lowest) { return std::min(0.9, std::floor(std::max(0.0, lowest) * 10.0) / 10.0); }

double lowest_shown(const Analysis& analysis, Shown shown) {
  double low = lowest_retention(shown == Shown::mean ? analysis.mean_curve : analysis.energy_curve, 1.0);
  for (const auto* points : {&analysis.presets, &analysis.sv_fro, &analysis.targets}) {
    for (const MarkedPoint& p : *points) {
      const double value = shown_value(p, shown);
      low = std::isfinite(value) ? std::min(low, value) : low;
    }
  }
  return axis_floor(low);
}

// A polyline's "x,y x,y …" for the curve's finite points, mapped by `x` and `y`.
template <typename X, typename Y>
std::string curve_points(const std::vector<CurvePoint>& curve, X x, Y y) {
  std::string points;
  for (const CurvePoint& p : curve) {
    if (!std::isfinite(p.retention)) continue;
    points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x(p.bytes), y(p.retention));
  }
  return points;
}

std::string polyline(const std::vector<CurvePoint>& curve, const ChartScale& scale, std::string_view css_class) {
  const std::string points = curve_points(curve, [&](std::uint64_t b) { return scale.x(b); },
                                          [&](double r) { return scale.y(r); });
  if (points.empty()) return "";
  return fmt::format("<polyline class=\"curve {}\" points=\"{}\"/>\n", css_class, points);
}

std::string axes(const ChartScale& scale) {
  std::string svg;
  const double y_step = 1.0 - scale.y_min > 0.45 ? 0.1 : (1.0 - scale.y_min > 0.2 ? 0.05 : 0.02);
  for (double level = 1.0; level >= scale.y_min - 1e-9; level -= y_step) {
    const double y = scale.y(level);
    svg += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.0f}%</text>\n",
                       kLeft, y, kChartWidth - kRight, y, kLeft - 6, y + 4, level * 100.0);
  }
  for (int quarter = 0; quarter <= 4; ++quarter) {
    const auto bytes = static_cast<std::uint64_t>(std::llround(scale.x_max * quarter / 4.0));
    const double x = scale.x(bytes);
    const char* anchor = quarter == 0 ? "start" : (quarter == 4 ? "end" : "middle");
    svg += fmt::format("<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"{4}\">{5}</text>\n",
                       x, kTop, kChartHeight - kBottom, kChartHeight - kBottom + 16, anchor, format_bytes(bytes));
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>"
                     "<text x=\"{3}\" y=\"{4}\" text-anchor=\"middle\">output file size</text>\n",
                     kLeft, kChartHeight - kBottom, kChartWidth - kRight, (kLeft + kChartWidth - kRight) / 2,
                     kChartHeight - 4);
  return svg;
}

std::string point_title(const MarkedPoint& p) {
  return fmt::format("<title>{}: {} — {}, mean {}, energy {}</title>", escape(p.label), escape(p.options),
                     format_bytes(p.bytes), percent(p.mean), percent(p.energy));
}

// Presets: labelled dots; sv_fro thresholds: squares; the budget allocation's targets: diamonds.
std::string marks(const Analysis& analysis, const ChartScale& scale, Shown shown) {
  std::string svg;
  for (const MarkedPoint& p : analysis.sv_fro) {
    const double value = shown_value(p, shown);
    if (!std::isfinite(value)) continue;
    svg += fmt::format("<g>{}<rect class=\"fro\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"8\" height=\"8\"/></g>\n",
                       point_title(p), scale.x(p.bytes) - 4, scale.y(value) - 4);
  }
  for (const MarkedPoint& p : analysis.targets) {
    const double value = shown_value(p, shown);
    if (!std::isfinite(value)) continue;
    const double x = scale.x(p.bytes), y = scale.y(value);
    svg += fmt::format("<g>{}<path class=\"target\" d=\"M{:.1f} {:.1f}l5 5l-5 5l-5 -5z\"/></g>\n", point_title(p), x,
                       y - 5);
  }
  for (const MarkedPoint& p : analysis.presets) {
    const double value = shown_value(p, shown);
    if (!std::isfinite(value)) continue;
    const double x = scale.x(p.bytes), y = scale.y(value);
    svg += fmt::format("<g>{}<circle class=\"preset\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\"/>"
                       "<text class=\"mark\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text></g>\n",
                       point_title(p), x, y, x + 7, y + 16, escape(p.label));
  }
  return svg;
}

std::string chart(const Analysis& analysis, Shown shown) {
  const bool mean = shown == Shown::mean;
  const ChartScale scale{static_cast<double>(std::max<std::uint64_t>(1, analysis.inspection.file_size)),
                         lowest_shown(analysis, shown)};
  std::string svg = fmt::format(
      "<figure>\n<figcaption>{}</figcaption>\n<svg id=\"plot-{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"output size against {}\">\n",
      mean ? "Size ↔ mean retention (average Frobenius retention per module)"
           : "Size ↔ energy retention (the whole file's ‖ΔW‖)",
      mean ? "mean" : "energy", kChartWidth, kChartHeight, mean ? "mean retention" : "energy retention");
  svg += axes(scale);
  svg += polyline(mean ? analysis.mean_curve : analysis.energy_curve, scale, mean ? "mean" : "energy");
  svg += marks(analysis, scale, shown);
  svg += "</svg>\n</figure>\n";
  return svg;
}

std::string legend() {
  return "<div class=\"legend\"><span><span class=\"swatch\" style=\"background:var(--mean)\"></span>budget "
         "allocation, objective mean (the best mean for each size)</span><span><span class=\"swatch\" "
         "style=\"background:var(--energy)\"></span>objective energy</span><span><span class=\"swatch\" "
         "style=\"background:var(--preset);border-radius:6px\"></span>presets high / med / low</span><span><span "
         "class=\"swatch\" style=\"background:var(--fro)\"></span>sv_fro thresholds</span><span><span "
         "class=\"swatch\" style=\"background:var(--target);transform:rotate(45deg) scale(.8)\"></span>budget "
         "targets</span></div>\n<p class=\"muted\">Hover a point for its options. Every marked point is the exact "
         "file <code>lorakit resize</code> writes with those options.</p>\n";
}

// ---- Sections -----------------------------------------------------------------------------------

template <typename Map, typename Format>
std::string joined(const Map& map, Format format) {
  std::string text;
  for (const auto& [key, count] : map) text += (text.empty() ? "" : ", ") + format(key, count);
  return text;
}

std::string facts(const Inspection& in) {
  std::string families;
  for (const std::string& family : in.families) families += (families.empty() ? "" : ", ") + family;
  std::string html = "<dl class=\"facts\">\n";
  auto fact = [&](std::string_view name, const std::string& value) {
    html += fmt::format("<dt>{}</dt><dd>{}</dd>\n", name, value);
  };
  fact("size", fmt::format("{} ({} bytes, {} tensors)", format_bytes(in.file_size), in.file_size, in.tensor_count));
  fact("base model", escape(in.base_model.name) +
                         (in.base_model.evidence.empty() ? "" : " <span class=\"muted\">(" +
                                                                    escape(in.base_model.evidence) + ")</span>"));
  fact("naming", escape(families));
  fact("modules", fmt::format("{} ({}{}{})", in.module_count,
                              escape(joined(in.kinds, [](const std::string& k, std::size_t n) {
                                return fmt::format("{} {}", n, k);
                              })),
                              in.conv_modules > 0 ? fmt::format(", {} conv", in.conv_modules) : "",
                              in.dora_modules > 0 ? fmt::format(", {} DoRA", in.dora_modules) : ""));
  fact("ranks", joined(in.ranks, [](std::uint64_t r, std::size_t n) { return fmt::format("{} × {}", n, r); }));
  fact("alphas", joined(in.alphas, [](double a, std::size_t n) { return fmt::format("{} × {:g}", n, a); }) +
                     (in.modules_without_alpha > 0 ? fmt::format(" ({} without alpha)", in.modules_without_alpha) : ""));
  fact("dtypes", escape(joined(in.dtypes, [](const std::string& d, const Inspection::DTypeUse& use) {
         return fmt::format("{} {} tensors, {}", d, use.tensors, format_bytes(use.bytes));
       })));
  if (!in.peft_sidecar.empty()) fact("PEFT config", "<code>" + escape(in.peft_sidecar) + "</code>");
  if (!in.passthrough.empty()) fact("other tensors", fmt::format("{} kept as they are", in.passthrough.size()));
  return html + "</dl>\n";
}

std::string points_table(const Analysis& analysis) {
  std::string html = "<table id=\"points\">\n<tr><th>options</th><th>what</th><th class=\"num\">size</th>"
                     "<th class=\"num\">of the input</th><th class=\"num\">mean</th><th class=\"num\">energy</th></tr>\n";
  const double input = static_cast<double>(std::max<std::uint64_t>(1, analysis.inspection.file_size));
  html += fmt::format("<tr><td>(as it is)</td><td></td><td class=\"num\">{}</td><td class=\"num\">100%</td>"
                      "<td class=\"num\">100.00%</td><td class=\"num\">100.00%</td></tr>\n",
                      format_bytes(analysis.inspection.file_size));
  for (const auto* points : {&analysis.presets, &analysis.targets, &analysis.sv_fro}) {
    for (const MarkedPoint& p : *points) {
      html += fmt::format("<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1f}%"
                          "</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                          escape(p.options), escape(p.label), format_bytes(p.bytes),
                          static_cast<double>(p.bytes) / input * 100.0, percent(p.mean), percent(p.energy));
    }
  }
  return html + "</table>\n";
}

constexpr double kCell = 34, kCellHeight = 20, kCharWidth = 6.6;

// One component's ranks for 95% as a grid: rows are blocks, columns layers; darker needs more rank.
std::string heat_map(const HeatMap& heat, std::size_t index) {
  double highest = 1.0;
  std::size_t label_chars = 4, column_chars = 4;
  for (const auto& row : heat.rank_95) {
    for (const std::optional<double>& cell : row) highest = cell ? std::max(highest, *cell) : highest;
  }
  for (const std::string& row : heat.rows) label_chars = std::max(label_chars, row.size());
  for (const std::string& column : heat.columns) column_chars = std::max(column_chars, column.size());
  const double left = static_cast<double>(label_chars) * kCharWidth + 10;
  const double top = static_cast<double>(column_chars) * kCharWidth * 0.72 + 12;  // labels at 45°
  const double width =
      left + kCell * static_cast<double>(heat.columns.size()) + static_cast<double>(column_chars) * kCharWidth * 0.72;
  const double height = top + kCellHeight * static_cast<double>(heat.rows.size()) + 4;
  std::string svg = fmt::format("<figure>\n<figcaption>Rank needed for 95% retention: {}</figcaption>\n"
                                "<div class=\"scroll\"><svg id=\"heat-{}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
                                "style=\"max-width:{:.0f}px\" role=\"img\" aria-label=\"heat map\">\n",
                                escape(heat.title), index, width, height, width * 1.3);
  for (std::size_t c = 0; c < heat.columns.size(); ++c) {
    const double x = left + kCell * (static_cast<double>(c) + 0.5);
    svg += fmt::format("<text transform=\"translate({:.1f} {:.1f}) rotate(-45)\">{}</text>\n", x, top - 6,
                       escape(heat.columns[c]));
  }
  for (std::size_t r = 0; r < heat.rows.size(); ++r) {
    const double y = top + kCellHeight * static_cast<double>(r);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, y + 14,
                       escape(heat.rows[r]));
    for (std::size_t c = 0; c < heat.columns.size(); ++c) {
      const std::optional<double>& cell = heat.rank_95[r][c];
      if (!cell) continue;
      const double share = *cell / highest;
      const double x = left + kCell * static_cast<double>(c);
      svg += fmt::format("<g><title>{} · {}: rank {:.1f} for 95% (mean of {} modules)</title>"
                         "<rect class=\"cell\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{}\" "
                         "fill-opacity=\"{:.2f}\"/><text class=\"cell{}\" x=\"{:.1f}\" y=\"{:.1f}\">{:.0f}</text></g>\n",
                         escape(heat.rows[r]), escape(heat.columns[c]), *cell, heat.modules[r][c], x + 1, y + 1,
                         kCell - 2, kCellHeight - 2, 0.10 + 0.90 * share, share > 0.55 ? " hi" : "", x + kCell / 2,
                         y + 14, *cell);
    }
  }
  return svg + "</svg></div>\n</figure>\n";
}

std::string module_row(const ModuleAnalysis& m) {
  std::string shape;
  for (const std::uint64_t d : m.weight_shape) shape += (shape.empty() ? "" : "×") + std::to_string(d);
  return fmt::format("<tr><td class=\"name\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                     "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}"
                     "</td><td class=\"num\">{}</td></tr>\n",
                     escape(m.stem), escape(m.kind), shape, m.rank, rank_text(m.ranks_needed[0]),
                     rank_text(m.ranks_needed[1]), rank_text(m.ranks_needed[2]), percent(m.energy_share),
                     format_bytes(m.bytes));
}

constexpr std::string_view kModuleHeader =
    "<tr><th>module</th><th>kind</th><th class=\"num\">weight</th><th class=\"num\">rank</th><th class=\"num\">90%</th>"
    "<th class=\"num\">95%</th><th class=\"num\">99%</th><th class=\"num\">energy</th><th class=\"num\">size</th></tr>\n";

std::string dead_weight_section(const Analysis& analysis) {
  const std::vector<const ModuleAnalysis*> dead = dead_weight(analysis);
  std::string html = fmt::format("<h2>Dead weight</h2>\n<p>{} modules keep 95% with at most {} ranks: {} "
                                 "({:.1f}% of the file).</p>\n",
                                 dead.size(), kDeadWeightRank, format_bytes(analysis.dead_bytes),
                                 analysis.dead_share * 100.0);
  if (dead.empty()) return html;
  html += fmt::format("<details id=\"dead-weight\"><summary>The {} modules, largest first</summary>\n"
                      "<div class=\"scroll\"><table>\n{}",
                      dead.size(), kModuleHeader);
  for (const ModuleAnalysis* m : dead) html += module_row(*m);
  return html + "</table></div></details>\n";
}

std::string modules_table(const Analysis& analysis) {
  const std::vector<const ModuleAnalysis*> order = modules_by_energy(analysis);
  std::string html = fmt::format("<h2>Modules</h2>\n<details id=\"modules\"><summary>All {} modules by energy share, "
                                 "with the rank each needs for 90 / 95 / 99% retention</summary>\n"
                                 "<div class=\"scroll\"><table>\n{}",
                                 order.size(), kModuleHeader);
  for (const ModuleAnalysis* m : order) html += module_row(*m);
  return html + "</table></div></details>\n";
}

// ---- The overview's sparkline --------------------------------------------------------------------

constexpr double kSparkWidth = 160, kSparkHeight = 36;

std::string sparkline(const OverviewRow& row, std::size_t index) {
  if (row.curve.empty()) return "";
  const double low = axis_floor(lowest_retention(row.curve, row.retention.value_or(1.0)));
  const double x_max = static_cast<double>(std::max<std::uint64_t>(1, row.input_bytes));
  auto x = [&](std::uint64_t bytes) {
    return 2 + std::clamp(static_cast<double>(bytes) / x_max, 0.0, 1.0) * (kSparkWidth - 4);
  };
  auto y = [&](double r) { return 2 + (1.0 - std::clamp((r - low) / (1.0 - low), 0.0, 1.0)) * (kSparkHeight - 4); };
  const std::string points = curve_points(row.curve, x, y);
  std::string svg = fmt::format("<svg id=\"spark-{}\" class=\"spark\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" "
                                "role=\"img\" aria-label=\"size against mean retention, {:.0f}% to 100%\">"
                                "<title>size 0 – {} against mean retention {:.0f}% – 100%</title>"
                                "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"var(--panel)\"/>"
                                "<polyline class=\"curve mean\" style=\"stroke-width:1.6\" points=\"{}\"/>",
                                index, kSparkWidth, kSparkHeight, kSparkWidth, kSparkHeight, low * 100.0,
                                format_bytes(row.input_bytes), low * 100.0, kSparkWidth, kSparkHeight, points);
  if (row.output_bytes && row.retention) {
    svg += fmt::format("<circle class=\"preset\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\"/>", x(*row.output_bytes),
                       y(*row.retention));
  }
  return svg + "</svg>";
}

}  // namespace

std::string analysis_html(const Analysis& analysis) {
  const Inspection& in = analysis.inspection;
  std::string html = page_start("lorakit: " + in.file);
  html += fmt::format("<h1>{}</h1>\n<p class=\"lead\">What this LoRA holds and what it can become "
                      "(<code>lorakit inspect</code>).</p>\n",
                      escape(in.file));
  html += facts(in);
  html += "<h2>Size ↔ retention</h2>\n<div class=\"charts\">\n" + chart(analysis, Shown::mean) +
          chart(analysis, Shown::energy) + "</div>\n" + legend();
  html += "<h2>What it can become</h2>\n<p class=\"muted\">Exact sizes and retention of the files these options "
          "write. mean: average Frobenius retention per module; energy: the whole file's.</p>\n<div class=\"scroll\">" +
          points_table(analysis) + "</div>\n";
  if (!analysis.heat_maps.empty()) {
    html += "<h2>Where the rank is needed</h2>\n<p class=\"muted\">Mean rank each block's layers need for 95% "
            "retention; blocks in the architecture's order.</p>\n";
    for (std::size_t i = 0; i < analysis.heat_maps.size(); ++i) html += heat_map(analysis.heat_maps[i], i);
  }
  html += dead_weight_section(analysis);
  html += modules_table(analysis);
  if (!analysis.notes.empty()) {
    html += "<h2>Notes</h2>\n<ul>\n";
    for (const std::string& note : analysis.notes) html += "<li>" + escape(note) + "</li>\n";
    html += "</ul>\n";
  }
  return html + std::string(kPageEnd);
}

std::string overview_html(std::string_view title, const std::vector<OverviewRow>& rows) {
  std::string html = page_start(std::string(title));
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::size_t resized = 0;
  for (const OverviewRow& row : rows) {
    if (row.status == "ok" && row.output_bytes) {
      ++resized;
      bytes_in += row.input_bytes;
      bytes_out += *row.output_bytes;
    }
  }
  html += fmt::format("<h1>{}</h1>\n<p class=\"lead\">{} files; {} resized: {} → {}. Each curve is its file's best "
                      "mean retention for each size (0 to the input's size); the dot is the file written.</p>\n",
                      escape(title), rows.size(), resized, format_bytes(bytes_in), format_bytes(bytes_out));
  html += "<div class=\"scroll\"><table id=\"files\">\n<tr><th>file</th><th>status</th><th class=\"num\">input</th>"
          "<th class=\"num\">output</th><th class=\"num\">mean retention</th><th>size ↔ retention</th>"
          "<th>note</th></tr>\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const OverviewRow& row = rows[i];
    const std::string name = row.page.empty() ? escape(row.name)
                                              : fmt::format("<a href=\"{}\">{}</a>", escape(url_path(row.page)), escape(row.name));
    html += fmt::format("<tr><td class=\"name\">{}</td><td class=\"status-{}\">{}</td><td class=\"num\">{}</td>"
                        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
                        name, escape(row.status), escape(row.status), format_bytes(row.input_bytes),
                        row.output_bytes ? format_bytes(*row.output_bytes) : "", row.retention ? percent(*row.retention) : "",
                        sparkline(row, i), escape(row.message));
  }
  return html + "</table></div>\n" + std::string(kPageEnd);
}

void write_page(const std::filesystem::path& output, std::string_view page, bool overwrite,
                const std::filesystem::path& input) {
  if (!input.empty() && same_path(input, output)) {
    throw Error(ErrorCode::same_file, output.string(), "", "the page would replace the file it is about");
  }
  AtomicFile file(output, overwrite);
  file.write(page);
  file.commit();
}

}  // namespace lorakit
