// PEFT adapter configs (`lora_adapter_metadata`, adapter_config.json): parsing (as diffusers and PEFT
// hand them to LoraConfig), resolving each module's scale, and rewriting them for new per-module ranks.
#include "adapter/peft.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"

namespace lorakit::adapter_detail {
namespace {

using Json = nlohmann::ordered_json;  // pattern order matters: PEFT takes the first key that matches

constexpr std::string_view kBaseModelPrefix = "base_model.model.";

[[noreturn]] void invalid(const PeftSource& source, std::string_view what, std::string_view tensor = "") {
  throw Error(ErrorCode::metadata_invalid, source.file, tensor,
              source.label.empty() ? std::string(what) : fmt::format("{}: {}", source.label, what));
}

// Keys made of these characters are matched without std::regex: only '.' is special (any character).
bool is_simple_pattern(std::string_view key) {
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool simple_equal(std::string_view key, std::string_view text) {
  return key.size() == text.size() &&
         std::equal(key.begin(), key.end(), text.begin(), [](char k, char t) { return k == '.' || k == t; });
}

std::regex pattern_regex(std::string_view key) { return std::regex("(.*\\.)?(" + std::string(key) + ")"); }

std::uint64_t rank_value(const Json& value, const PeftSource& source, std::string_view field) {
  if (value.is_number_unsigned() && value.get<std::uint64_t>() > 0) return value.get<std::uint64_t>();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (v >= 1.0 && v < 9.0e15 && v == std::floor(v)) return static_cast<std::uint64_t>(v);
  }
  invalid(source, fmt::format("'{}' is not a positive integer: {}", field, value.dump()));
}

double alpha_value(const Json& value, const PeftSource& source, std::string_view field) {
  if (!value.is_number()) invalid(source, fmt::format("'{}' is not a number: {}", field, value.dump()));
  return value.get<double>();
}

template <typename T, typename Convert>
std::vector<std::pair<std::string, T>> pattern_value(const Json& value, const PeftSource& source,
                                                     std::string_view field, Convert convert) {
  std::vector<std::pair<std::string, T>> entries;
  if (value.is_null()) return entries;
  if (!value.is_object()) invalid(source, fmt::format("'{}' is not an object", field));
  for (const auto& [key, entry] : value.items()) {
    if (!is_simple_pattern(key)) {
      try {
        pattern_regex(key);
      } catch (const std::regex_error&) {
        invalid(source, fmt::format("'{}' key '{}' is not a valid pattern", field, key));
      }
    }
    entries.emplace_back(key, convert(entry, source, fmt::format("{}[{}]", field, key)));
  }
  return entries;
}

void read_field(PeftSettings& settings, std::string_view field, const Json& value, const PeftSource& source) {
  if (field == "r") {
    settings.r = rank_value(value, source, field);
  } else if (field == "lora_alpha") {
    settings.lora_alpha = alpha_value(value, source, field);
  } else if (field == "use_rslora") {
    if (!value.is_boolean()) invalid(source, "'use_rslora' is not a boolean");
    settings.use_rslora = value.get<bool>();
  } else if (field == "rank_pattern") {
    settings.rank_pattern = pattern_value<std::uint64_t>(value, source, field, rank_value);
  } else if (field == "alpha_pattern") {
    settings.alpha_pattern = pattern_value<double>(value, source, field, alpha_value);
  } else if (field == "peft_type" && value != "LORA") {
    // LoHa, LoKr, IA3, ... adapters of PEFT name their tensors and fields differently.
    invalid(source, fmt::format("'peft_type' is {}: lorakit reads PEFT LoRA adapters only", value.dump()));
  }
}

template <typename T>
const T* first_match(const std::vector<std::pair<std::string, T>>& pattern, std::string_view module_name) {
  for (const auto& [key, value] : pattern) {
    if (peft_pattern_matches(key, module_name)) return &value;
  }
  return nullptr;
}

}  // namespace

bool peft_pattern_matches(std::string_view key, std::string_view module_name) {
  if (!is_simple_pattern(key)) {
    return std::regex_match(module_name.begin(), module_name.end(), pattern_regex(key));
  }
  if (simple_equal(key, module_name)) return true;
  const std::size_t tail = key.size();
  return module_name.size() > tail && module_name[module_name.size() - tail - 1] == '.' &&
         simple_equal(key, module_name.substr(module_name.size() - tail));
}

std::uint64_t PeftSettings::rank_for(std::string_view module_name) const {
  const std::uint64_t* value = first_match(rank_pattern, module_name);
  return value ? *value : r;
}

double PeftSettings::alpha_for(std::string_view module_name) const {
  const double* value = first_match(alpha_pattern, module_name);
  return value ? *value : lora_alpha;
}

PeftSource metadata_source(std::string_view file) {
  static const std::string label = fmt::format("metadata '{}'", kPeftMetadataKey);
  return PeftSource{file, label, true};
}

PeftSource sidecar_source(std::string_view config_file) { return PeftSource{config_file, "", false}; }

ParsedPeftConfig parse_peft_config(std::string_view json, const PeftSource& source) {
  Json doc;
  try {
    doc = Json::parse(json);
  } catch (const Json::parse_error& e) {
    invalid(source, fmt::format("not valid JSON ({})", e.what()));
  }
  if (!doc.is_object()) invalid(source, "not a JSON object");
  ParsedPeftConfig config;
  if (!source.component_prefixes) config.components[""];  // LoraConfig's defaults apply to every module
  for (const auto& [key, value] : doc.items()) {
    // diffusers prefixes each field with its component ("transformer.r"); field names have no '.'.
    const std::size_t dot = source.component_prefixes ? key.find('.') : std::string::npos;
    const std::string component = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string_view field = dot == std::string::npos ? std::string_view(key)
                                                            : std::string_view(key).substr(dot + 1);
    read_field(config.components[component], field, value, source);
  }
  return config;
}

std::optional<PeftModuleName> peft_module_name(const ParsedPeftConfig& config, std::string_view stem) {
  const std::size_t dot = stem.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    const std::string component(stem.substr(0, dot));
    if (config.components.count(component) != 0) {
      return PeftModuleName{component, std::string(stem.substr(dot + 1))};
    }
  }
  if (config.components.count("") == 0) return std::nullopt;
  if (stem.starts_with(kBaseModelPrefix)) stem.remove_prefix(kBaseModelPrefix.size());
  return PeftModuleName{"", std::string(stem)};
}

PeftConfig apply_peft_config(std::string json, const PeftSource& source, std::vector<Module>& modules) {
  const ParsedPeftConfig parsed = parse_peft_config(json, source);
  PeftConfig config;
  config.json = std::move(json);
  for (Module& module : modules) {
    const bool scaled_by_peft = module.alpha_source == AlphaSource::peft_metadata;
    if (module.family != "peft" || (module.alpha_source != AlphaSource::none && !scaled_by_peft)) continue;
    const std::optional<PeftModuleName> name = peft_module_name(parsed, module.stem);
    if (!name) continue;
    const PeftSettings& settings = parsed.components.at(name->component);
    const std::uint64_t rank = settings.rank_for(name->name);
    const double alpha = settings.alpha_for(name->name);
    if (rank != module.rank) {
      invalid(source,
              fmt::format("PEFT builds '{}' at rank {} from this config, but its tensors have rank {}: PEFT "
                          "cannot load this adapter",
                          name->name, rank, module.rank),
              module.down_name);
    }
    const double r = static_cast<double>(rank);
    const double scale = settings.use_rslora ? alpha / std::sqrt(r) : alpha / r;
    if (scaled_by_peft && scale != module.scale) {
      invalid(source,
              fmt::format("gives '{}' the scale {} but the file's {} gives it {}: the two configs disagree",
                          name->name, scale, kPeftMetadataKey, module.scale),
              module.down_name);
    }
    module.alpha_source = AlphaSource::peft_metadata;
    module.alpha = alpha;
    module.rslora = settings.use_rslora;
    module.scale = scale;
    config.modules[module.stem] = PeftConfig::ModuleEntry{name->component, name->name, module.rank, alpha};
  }
  return config;
}

}  // namespace lorakit::adapter_detail

namespace lorakit {
namespace {

using adapter_detail::peft_pattern_matches;
using Json = nlohmann::ordered_json;

struct Target {
  std::string name;  // PEFT module name
  std::uint64_t rank = 0;
  double alpha = 0.0;
};

// The value most modules have: fewest pattern entries. Ties keep the current value, else the smallest.
template <typename T>
T most_common(const std::vector<T>& values, T current) {
  std::map<T, std::size_t> counts;
  for (const T& v : values) ++counts[v];
  std::size_t best_count = 0;
  T best = current;
  for (const auto& [value, count] : counts) {
    if (count > best_count) {
      best = value;
      best_count = count;
    }
  }
  const auto current_count = counts.find(current);
  if (current_count != counts.end() && current_count->second == best_count) return current;
  return best;
}

// The module names that need their own pattern entry: those whose value differs from the global
// one, plus any module another entry would capture (PEFT matches keys as dotted suffixes).
template <typename Differs>
std::vector<std::string> pattern_names(const std::vector<Target>& targets, Differs differs) {
  std::set<std::string> keyed;
  for (const Target& t : targets) {
    if (differs(t)) keyed.insert(t.name);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const Target& t : targets) {
      if (keyed.count(t.name) != 0) continue;
      const bool captured = std::any_of(keyed.begin(), keyed.end(),
                                        [&](const std::string& key) { return peft_pattern_matches(key, t.name); });
      if (captured) {
        keyed.insert(t.name);
        grew = true;
      }
    }
  }
  std::vector<std::string> names(keyed.begin(), keyed.end());
  // A module's own key must come before any shorter key that also matches it.
  std::stable_sort(names.begin(), names.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return names;
}

Json alpha_json(double alpha) {
  if (alpha == std::floor(alpha) && std::fabs(alpha) < 9.0e15) return static_cast<std::int64_t>(alpha);
  return alpha;
}

std::string field_key(const std::string& component, std::string_view field) {
  return component.empty() ? std::string(field) : component + "." + std::string(field);
}

void rewrite_component(Json& doc, const std::string& component, const std::vector<Target>& targets,
                       const adapter_detail::PeftSettings& current) {
  std::vector<std::uint64_t> ranks;
  std::vector<double> alphas;
  for (const Target& t : targets) {
    ranks.push_back(t.rank);
    alphas.push_back(t.alpha);
  }
  const std::uint64_t r = most_common(ranks, current.r);
  const double alpha = most_common(alphas, current.lora_alpha);
  Json rank_pattern = Json::object();
  Json alpha_pattern = Json::object();
  std::map<std::string, const Target*> by_name;
  for (const Target& t : targets) by_name[t.name] = &t;
  for (const std::string& name : pattern_names(targets, [&](const Target& t) { return t.rank != r; })) {
    rank_pattern[name] = by_name.at(name)->rank;
  }
  for (const std::string& name : pattern_names(targets, [&](const Target& t) { return t.alpha != alpha; })) {
    alpha_pattern[name] = alpha_json(by_name.at(name)->alpha);
  }
  doc[field_key(component, "r")] = r;
  doc[field_key(component, "lora_alpha")] = alpha_json(alpha);
  doc[field_key(component, "rank_pattern")] = std::move(rank_pattern);
  doc[field_key(component, "alpha_pattern")] = std::move(alpha_pattern);
}

// How a config's keys are read: a sidecar holds one LoraConfig, metadata may prefix components.
adapter_detail::PeftSource source_of(const PeftConfig& config) {
  return config.sidecar.empty() ? adapter_detail::metadata_source("") : adapter_detail::sidecar_source("");
}

// The rewritten text must give every module exactly its new rank and alpha when PEFT reads it.
void check_resolution(const std::string& text, const adapter_detail::PeftSource& source,
                      const std::map<std::string, std::vector<Target>>& components) {
  const adapter_detail::ParsedPeftConfig parsed = adapter_detail::parse_peft_config(text, source);
  for (const auto& [component, targets] : components) {
    const adapter_detail::PeftSettings& settings = parsed.components.at(component);
    for (const Target& t : targets) {
      if (settings.rank_for(t.name) != t.rank || settings.alpha_for(t.name) != t.alpha) {
        throw Error(ErrorCode::internal, "", t.name, "rewritten PEFT config does not resolve this module exactly");
      }
    }
  }
}

}  // namespace

std::string rewrite_peft_config(const PeftConfig& config, const std::map<std::string, std::uint64_t>& new_rank,
                                const std::map<std::string, double>& new_alpha) {
  if (config.modules.empty()) return config.json;
  const adapter_detail::PeftSource source = source_of(config);
  const adapter_detail::ParsedPeftConfig current = adapter_detail::parse_peft_config(config.json, source);
  std::map<std::string, std::vector<Target>> components;
  for (const auto& [stem, entry] : config.modules) {
    const auto rank = new_rank.find(stem);
    const auto alpha = new_alpha.find(stem);
    components[entry.component].push_back(Target{entry.name, rank != new_rank.end() ? rank->second : entry.rank,
                                                 alpha != new_alpha.end() ? alpha->second : entry.alpha});
  }
  Json doc = Json::parse(config.json);
  for (const auto& [component, targets] : components) {
    const auto settings = current.components.find(component);
    rewrite_component(doc, component, targets,
                      settings != current.components.end() ? settings->second : adapter_detail::PeftSettings{});
  }
  // Keep the original layout style: diffusers writes the config indented.
  std::string text = config.json.find('\n') != std::string::npos ? doc.dump(2) : doc.dump();
  check_resolution(text, source, components);
  return text;
}

}  // namespace lorakit
