#pragma once
// Key grammars: which tensor name is which role of which module stem, under which naming grammar.
#include <optional>
#include <string>
#include <string_view>

#include "lorakit/adapter.hpp"

namespace lorakit::adapter_detail {

// A grammar is a set of key suffixes; the family id also depends on the stem (see family_of).
enum class Grammar {
  kohya,             // .lora_down.weight / .lora_up.weight / .lora_mid.weight
  lycoris,           // .hada_* / .lokr_*
  peft,              // .lora_A[.ADAPTER][.weight] / .lora_B… / .lora_magnitude_vector…
  legacy_processor,  // _lora.down.weight (…processor.to_q_lora.down.weight)
  legacy_lora,       // .lora.down.weight
  legacy_linear,     // .lora_linear_layer.down.weight
  plain_weight,      // .down.weight / .up.weight (xlabs, ControlLoRA)
  plain,             // .down / .up (ControlLoRA)
  any,               // .alpha / .scale / .dora_scale: belongs to whichever module has the stem
};

struct ParsedKey {
  std::string_view stem;
  std::string_view adapter_name;  // PEFT adapter infix, "" if none
  Role role;
  Grammar grammar;
};

// The longest suffix of the grammar table that `name` ends with; nullopt for a pass-through name.
std::optional<ParsedKey> parse_key(std::string_view name);

// The family id of a module of `grammar` with this stem (see adapter.hpp).
std::string family_of(Grammar grammar, std::string_view stem);

// Whether modules of this family carry alpha tensors by convention (kohya, comfyui, lycoris).
bool family_carries_alpha(std::string_view family);

// Throws Error(adapter_format_unsupported) naming `file` for adapter formats that no current loader
// reads, so that they are refused by name instead of as "no module": the early cloneofsimo/lora format
// (`unet:0:up`, `text_encoder:3:down`, ranks in `unet:0:rank` metadata), whose modules are numbered in
// training order and cannot be matched to layers without the training code.
void reject_unsupported_format(const Header& header, std::string_view file);

// The suffixes a plain LoRA is written with when the input module is LyCORIS (kohya style).
inline constexpr std::string_view kKohyaDownSuffix = ".lora_down.weight";
inline constexpr std::string_view kKohyaUpSuffix = ".lora_up.weight";
inline constexpr std::string_view kAlphaSuffix = ".alpha";

}  // namespace lorakit::adapter_detail
