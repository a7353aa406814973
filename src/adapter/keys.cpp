// The key grammar table: every suffix lorakit recognises, the role it names and its grammar.
#include "adapter/keys.hpp"

#include <cctype>

namespace lorakit::adapter_detail {
namespace {

struct KeyPattern {
  std::string_view suffix;  // with its leading separator; the stem is what precedes it
  Role role;
  Grammar grammar;
  // PEFT state dicts name the adapter inside the key: ".lora_A.weight" then also matches
  // ".lora_A.<ADAPTER>.weight".
  bool adapter_infix = false;
};

constexpr KeyPattern kPatterns[] = {
    {".lora_down.weight", Role::down, Grammar::kohya},
    {".lora_up.weight", Role::up, Grammar::kohya},
    {".lora_mid.weight", Role::mid, Grammar::kohya},

    {".hada_w1_a", Role::hada_w1_a, Grammar::lycoris},
    {".hada_w1_b", Role::hada_w1_b, Grammar::lycoris},
    {".hada_w2_a", Role::hada_w2_a, Grammar::lycoris},
    {".hada_w2_b", Role::hada_w2_b, Grammar::lycoris},
    {".hada_t1", Role::hada_t1, Grammar::lycoris},
    {".hada_t2", Role::hada_t2, Grammar::lycoris},
    {".lokr_w1", Role::lokr_w1, Grammar::lycoris},
    {".lokr_w1_a", Role::lokr_w1_a, Grammar::lycoris},
    {".lokr_w1_b", Role::lokr_w1_b, Grammar::lycoris},
    {".lokr_w2", Role::lokr_w2, Grammar::lycoris},
    {".lokr_w2_a", Role::lokr_w2_a, Grammar::lycoris},
    {".lokr_w2_b", Role::lokr_w2_b, Grammar::lycoris},
    {".lokr_t2", Role::lokr_t2, Grammar::lycoris},

    {".lora_A.weight", Role::down, Grammar::peft, true},
    {".lora_B.weight", Role::up, Grammar::peft, true},
    {".lora_A", Role::down, Grammar::peft},  // ComfyUI reads these (Mochi trainers write them)
    {".lora_B", Role::up, Grammar::peft},
    {".lora_magnitude_vector.weight", Role::dora, Grammar::peft, true},
    {".lora_magnitude_vector", Role::dora, Grammar::peft},

    {"_lora.down.weight", Role::down, Grammar::legacy_processor},
    {"_lora.up.weight", Role::up, Grammar::legacy_processor},
    {".lora.down.weight", Role::down, Grammar::legacy_lora},
    {".lora.up.weight", Role::up, Grammar::legacy_lora},
    {".lora_linear_layer.down.weight", Role::down, Grammar::legacy_linear},
    {".lora_linear_layer.up.weight", Role::up, Grammar::legacy_linear},

    {".down.weight", Role::down, Grammar::plain_weight},
    {".up.weight", Role::up, Grammar::plain_weight},
    {".down", Role::down, Grammar::plain},
    {".up", Role::up, Grammar::plain},

    {".alpha", Role::alpha, Grammar::any},
    {".scale", Role::scale, Grammar::any},
    {".dora_scale", Role::dora, Grammar::any},
};

constexpr std::string_view kWeight = ".weight";

// The stem and adapter name if `name` is STEM + suffix (or, for infix patterns,
// STEM + suffix-without-".weight" + "." + ADAPTER + ".weight").
std::optional<ParsedKey> match(std::string_view name, const KeyPattern& pattern) {
  if (name.size() > pattern.suffix.size() && name.ends_with(pattern.suffix)) {
    return ParsedKey{name.substr(0, name.size() - pattern.suffix.size()), {}, pattern.role, pattern.grammar};
  }
  if (!pattern.adapter_infix || !name.ends_with(kWeight)) {
    return std::nullopt;
  }
  const std::string_view head = pattern.suffix.substr(0, pattern.suffix.size() - kWeight.size());
  const std::string_view without_weight = name.substr(0, name.size() - kWeight.size());
  const std::size_t dot = without_weight.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == without_weight.size()) {
    return std::nullopt;
  }
  const std::string_view before_adapter = without_weight.substr(0, dot);
  if (before_adapter.size() <= head.size() || !before_adapter.ends_with(head)) {
    return std::nullopt;
  }
  return ParsedKey{before_adapter.substr(0, before_adapter.size() - head.size()), without_weight.substr(dot + 1),
                   pattern.role, pattern.grammar};
}

// xlabs Flux processors name their LoRAs qkv_lora1, proj_lora2, …
bool ends_with_numbered_lora(std::string_view stem) {
  std::size_t digits = 0;
  while (digits < stem.size() && std::isdigit(static_cast<unsigned char>(stem[stem.size() - 1 - digits]))) {
    ++digits;
  }
  return digits > 0 && stem.substr(0, stem.size() - digits).ends_with("_lora");
}

}  // namespace

std::optional<ParsedKey> parse_key(std::string_view name) {
  std::optional<ParsedKey> best;
  for (const KeyPattern& pattern : kPatterns) {
    std::optional<ParsedKey> parsed = match(name, pattern);
    if (parsed && (!best || parsed->stem.size() < best->stem.size())) {
      best = parsed;  // the longest suffix is the most specific grammar
    }
  }
  return best;
}

std::string family_of(Grammar grammar, std::string_view stem) {
  switch (grammar) {
    case Grammar::kohya:
      if (stem.starts_with("lycoris_")) return "lycoris";
      return stem.find('.') == std::string_view::npos ? "kohya" : "comfyui";
    case Grammar::lycoris:
      return "lycoris";
    case Grammar::peft:
      return "peft";
    case Grammar::legacy_processor:
    case Grammar::legacy_lora:
    case Grammar::legacy_linear:
      return "legacy_diffusers";
    case Grammar::plain_weight:
      return ends_with_numbered_lora(stem) ? "xlabs" : "controllora";
    case Grammar::plain:
      return "controllora";
    case Grammar::any:
      break;
  }
  return "";
}

bool family_carries_alpha(std::string_view family) {
  return family == "kohya" || family == "comfyui" || family == "lycoris";
}

}  // namespace lorakit::adapter_detail
