#include "analysis/blocks.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace lorakit::detail {
namespace {

// Prefixes that only say which family or component wrote the key; the component is kept apart.
struct Component {
  std::string_view prefix;
  std::string_view label;  // "" for the denoiser (UNet or transformer)
  int order;               // the denoiser first, then text encoders
};
constexpr std::array<Component, 16> kComponents{{
    {"lora_unet_", "", 0},
    {"lora_transformer_", "", 0},
    {"lycoris_", "", 0},
    {"base_model_model_", "", 0},
    {"diffusion_model_", "", 0},
    {"transformer_", "", 0},
    {"unet_", "", 0},
    {"model_diffusion_model_", "", 0},
    {"lora_te1_", "te1 ", 1},
    {"lora_te2_", "te2 ", 2},
    {"lora_te3_", "te3 ", 3},
    {"lora_te_", "te ", 1},
    {"text_encoder_2_", "te2 ", 2},
    {"text_encoder_", "te ", 1},
    {"te1_", "te1 ", 1},
    {"te2_", "te2 ", 2},
}};

// Block keywords in the order the architecture runs them; "mid" kinds carry no index.
struct Stage {
  std::string_view keyword;
  std::string_view label;
  bool indexed;
};
constexpr std::array<Stage, 13> kStages{{
    {"down_blocks_", "down", true},
    {"input_blocks_", "input", true},
    {"mid_block_", "mid", false},
    {"middle_block_", "mid", false},
    {"up_blocks_", "up", true},
    {"output_blocks_", "output", true},
    {"joint_blocks_", "joint", true},
    {"double_blocks_", "double", true},
    {"transformer_blocks_", "double", true},  // diffusers Flux: the double-stream blocks
    {"single_blocks_", "single", true},
    {"single_transformer_blocks_", "single", true},
    {"blocks_", "block", true},
    {"layers_", "layer", true},
}};

std::string normalized(std::string_view stem) {
  std::string name(stem);
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

// "attentions_0_transformer_blocks_0_attn1_to_q" → "attn1_to_q": index tokens and containers dropped.
std::string part_of(std::string_view rest) {
  static constexpr std::array<std::string_view, 6> kContainers{"attentions", "transformer", "blocks", "processor",
                                                              "text", "model"};
  std::vector<std::string_view> tokens;
  std::size_t start = 0;
  while (start <= rest.size()) {
    const std::size_t end = std::min(rest.find('_', start), rest.size());
    const std::string_view token = rest.substr(start, end - start);
    const bool index = !token.empty() && std::all_of(token.begin(), token.end(), [](char c) { return std::isdigit(c); });
    const bool container = std::find(kContainers.begin(), kContainers.end(), token) != kContainers.end();
    if (!token.empty() && !index && !container) tokens.push_back(token);
    start = end + 1;
  }
  std::string part;
  for (std::string_view token : tokens) {
    if (!part.empty()) part += '_';
    part += token;
  }
  return part.empty() ? std::string(rest) : part;
}

}  // namespace

BlockPlace block_place(std::string_view stem) {
  std::string name = normalized(stem);
  BlockPlace place;
  std::string component;
  for (const Component& c : kComponents) {
    if (name.starts_with(c.prefix)) {
      name.erase(0, c.prefix.size());
      component = c.label;
      place.component = component.empty() ? "" : component.substr(0, component.size() - 1);
      place.order[0] = c.order;
      break;
    }
  }
  // The earliest block keyword in the name (so "down_blocks_1_attentions_0_transformer_blocks_0" is down 1).
  std::size_t best_at = std::string::npos;
  const Stage* best = nullptr;
  for (const Stage& stage : kStages) {
    const std::size_t at = name.find(stage.keyword);
    const bool word_start = at == 0 || (at != std::string::npos && name[at - 1] == '_');
    if (at != std::string::npos && word_start && (best == nullptr || at < best_at)) {
      best_at = at;
      best = &stage;
    }
  }
  if (best == nullptr) {
    place.block = component + "other";
    place.part = part_of(name);
    place.order[1] = static_cast<int>(kStages.size());
    return place;
  }
  std::size_t rest = best_at + best->keyword.size();
  place.order[1] = static_cast<int>(best - kStages.data());
  place.block = component + std::string(best->label);
  if (best->indexed) {
    std::size_t digits = rest;
    while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits]))) ++digits;
    if (digits > rest) {
      const std::string index = name.substr(rest, digits - rest);
      place.block += " " + index;
      place.order[2] = std::stoi(index.substr(0, 6));
      rest = digits;
    }
  }
  if (rest < name.size() && name[rest] == '_') ++rest;
  place.part = part_of(std::string_view(name).substr(rest));
  return place;
}

}  // namespace lorakit::detail
