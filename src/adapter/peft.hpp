#pragma once
// The PEFT adapter config diffusers stores in `lora_adapter_metadata`: parsing it the way diffusers
// and PEFT read it, and resolving a module's rank and alpha from it.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// Throws Error(metadata_invalid) naming `file` when the JSON or a field we use is malformed.
ParsedPeftConfig parse_peft_config(std::string_view json, std::string_view file);

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
