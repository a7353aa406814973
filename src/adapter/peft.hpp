#pragma once
// PEFT adapter configs — the one diffusers stores in `lora_adapter_metadata` and the adapter_config.json
// beside a raw PEFT adapter: parsing them the way diffusers and PEFT read them, and resolving a
// module's rank and alpha from them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lorakit/adapter.hpp"

namespace lorakit::adapter_detail {

inline constexpr std::string_view kPeftMetadataKey = "lora_adapter_metadata";

// One LoraConfig: the plain fields of the config, or those of one component ("transformer.r", ...).
// Defaults are PEFT's LoraConfig defaults, which apply when a field is absent.
struct PeftSettings {
  std::uint64_t r = 8;
  double lora_alpha = 8.0;
  bool use_rslora = false;
  std::vector<std::pair<std::string, std::uint64_t>> rank_pattern;  // in file order: first match wins
  std::vector<std::pair<std::string, double>> alpha_pattern;

  std::uint64_t rank_for(std::string_view module_name) const;
  double alpha_for(std::string_view module_name) const;
};

struct ParsedPeftConfig {
  std::map<std::string, PeftSettings> components;  // "" holds the plain (unprefixed) fields
};

// Where a config was read from: what errors name, and how its keys are read.
struct PeftSource {
  std::string_view file;     // the file errors name
  std::string_view label;    // prefix of error messages ("metadata 'lora_adapter_metadata'"), or ""
  bool component_prefixes;   // diffusers' "COMPONENT.field" keys (metadata); a sidecar holds one LoraConfig
};
PeftSource metadata_source(std::string_view file);
PeftSource sidecar_source(std::string_view config_file);

// Throws Error(metadata_invalid) naming the source when the JSON or a field we use is malformed, or
// when it is the config of another PEFT method (`peft_type` other than "LORA").
ParsedPeftConfig parse_peft_config(std::string_view json, const PeftSource& source);

// Gives every PEFT-spelled module the config applies to its alpha and scale from the config (modules
// with an alpha or scale tensor keep theirs) and lists it in the returned config. PEFT builds each
// layer at the config's rank, so a module whose tensors have another rank is Error(metadata_invalid);
// a module already scaled by another config (the file's metadata) must get the same rank and scale
// from this one, or the two disagree (Error(metadata_invalid)).
PeftConfig apply_peft_config(std::string json, const PeftSource& source, std::vector<Module>& modules);

struct PeftModuleName {
  std::string component;
  std::string name;
};
// The component and PEFT module name of a module stem (see PeftConfig in adapter.hpp); nullopt when
// no part of the config applies to it.
std::optional<PeftModuleName> peft_module_name(const ParsedPeftConfig& config, std::string_view stem);

// PEFT's get_pattern_key test: re.match(rf"(.*\.)?({key})$", module_name).
bool peft_pattern_matches(std::string_view key, std::string_view module_name);

}  // namespace lorakit::adapter_detail
