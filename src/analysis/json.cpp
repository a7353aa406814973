// The analysis as JSON: the inspection's object with an "analysis" member.
#include <cmath>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lorakit/analysis.hpp"

namespace lorakit {
namespace {

nlohmann::ordered_json number(double value) {
  return std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
}

template <typename T>
nlohmann::ordered_json optional(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

std::string level_key(double level) { return fmt::format("{:g}%", level * 100.0); }  // "95%"

nlohmann::ordered_json points(const std::vector<MarkedPoint>& marked) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const MarkedPoint& p : marked) {
    list.push_back({{"label", p.label}, {"options", p.options}, {"bytes", p.bytes}, {"mean", number(p.mean)},
                    {"energy", number(p.energy)}});
  }
  return list;
}

nlohmann::ordered_json curve(const std::vector<CurvePoint>& samples) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const CurvePoint& p : samples) list.push_back({p.bytes, number(p.retention)});
  return list;
}

nlohmann::ordered_json modules(const std::vector<ModuleAnalysis>& rows) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ModuleAnalysis& m : rows) {
    nlohmann::ordered_json needed = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < std::size(kRetentionLevels); ++i) {
      needed[level_key(kRetentionLevels[i])] = optional(m.ranks_needed[i]);
    }
    list.push_back({{"name", m.stem},
                    {"kind", m.kind},
                    {"shape", m.weight_shape},
                    {"rank", m.rank},
                    {"bytes", m.bytes},
                    {"energy", number(m.energy)},
                    {"energy_share", number(m.energy_share)},
                    {"rank_needed", needed},
                    {"dead", m.dead},
                    {"component", m.component},
                    {"block", m.block},
                    {"part", m.part}});
  }
  return list;
}

}  // namespace

std::string analysis_json(const Analysis& analysis) {
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(inspection_json(analysis.inspection));
  nlohmann::ordered_json heat_maps = nlohmann::ordered_json::array();
  for (const HeatMap& heat : analysis.heat_maps) {
    nlohmann::ordered_json cells = nlohmann::ordered_json::array();
    for (const auto& row : heat.rank_95) {
      nlohmann::ordered_json values = nlohmann::ordered_json::array();
      for (const std::optional<double>& cell : row) values.push_back(optional(cell));
      cells.push_back(values);
    }
    heat_maps.push_back({{"title", heat.title}, {"rows", heat.rows}, {"columns", heat.columns}, {"rank_95", cells},
                         {"modules", heat.modules}});
  }
  json["analysis"] = {
      {"curves", {{"mean", curve(analysis.mean_curve)}, {"energy", curve(analysis.energy_curve)}}},
      {"presets", points(analysis.presets)},
      {"sv_fro", points(analysis.sv_fro)},
      {"targets", points(analysis.targets)},
      {"dead_weight", {{"rank", kDeadWeightRank}, {"bytes", analysis.dead_bytes}, {"share", number(analysis.dead_share)}}},
      {"heat_maps", heat_maps},
      {"modules", modules(analysis.modules)},
      {"notes", analysis.notes},
  };
  return json.dump(2);
}

}  // namespace lorakit
