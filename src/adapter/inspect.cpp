// `lorakit inspect`: a summary of a LoRA file, and a guess of its base model from key and shape
// signatures (names as kohya, musubi-tuner, diffusers, ComfyUI and xlabs spell them).
#include "lorakit/inspect.hpp"
#include "lorakit/units.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace lorakit {
namespace {

// A module of the denoiser, its name with trainer prefixes removed and '.' spelled '_'
// ("lora_unet_double_blocks_0_img_attn_qkv" and "diffusion_model.double_blocks.0.img_attn.qkv" both
// become "double_blocks_0_img_attn_qkv").
struct Layer {
  std::string name;
  std::uint64_t in = 0;  // input width of the patched weight
};

constexpr std::array<std::string_view, 2> kTextEncoderPrefixes = {"lora_te", "text_encoder"};
constexpr std::array<std::string_view, 8> kDenoiserPrefixes = {
    "lora_unet_", "lora_transformer_", "lycoris_", "base_model.model.", "model.diffusion_model.", "diffusion_model.",
    "transformer.", "unet."};

bool starts_with_any(std::string_view text, std::span<const std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return text.starts_with(p); });
}

std::string layer_name(std::string_view stem) {
  for (std::string_view prefix : kDenoiserPrefixes) {
    if (stem.starts_with(prefix)) {
      stem.remove_prefix(prefix.size());
      break;
    }
  }
  std::string name(stem);
  std::replace(name.begin(), name.end(), '.', '_');
  name.erase(0, name.find_first_not_of('_'));  // Wan-Fun writes "lora_unet__blocks_0_…"
  return name;
}

std::vector<Layer> denoiser_layers(const AdapterModel& model) {
  std::vector<Layer> layers;
  for (const Module& module : model.modules) {
    if (starts_with_any(module.stem, kTextEncoderPrefixes)) continue;
    layers.push_back(Layer{layer_name(module.stem), module.weight_shape.at(1)});
  }
  return layers;
}

bool any_name(const std::vector<Layer>& layers, const std::regex& pattern) {
  return std::any_of(layers.begin(), layers.end(),
                     [&](const Layer& layer) { return std::regex_search(layer.name, pattern); });
}

// The most common input width of the layers matching `pattern`.
std::optional<std::uint64_t> common_in(const std::vector<Layer>& layers, const std::regex& pattern) {
  std::map<std::uint64_t, std::size_t> counts;
  for (const Layer& layer : layers) {
    if (std::regex_search(layer.name, pattern)) ++counts[layer.in];
  }
  if (counts.empty()) return std::nullopt;
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

// The largest block index captured by group 1 of `pattern`, or -1.
long max_index(const std::vector<Layer>& layers, const std::regex& pattern) {
  long best = -1;
  std::smatch match;
  for (const Layer& layer : layers) {
    if (std::regex_search(layer.name, match, pattern)) best = std::max(best, std::stol(match[1].str()));
  }
  return best;
}

std::string width_text(std::optional<std::uint64_t> width) {
  return width ? fmt::format("{}", *width) : std::string("unknown");
}

BaseModelGuess guess(std::string name, std::string evidence) { return {std::move(name), std::move(evidence)}; }

// BFL-style blocks (kohya, musubi-tuner, ComfyUI, xlabs): Flux, or HunyuanVideo by musubi's names.
BaseModelGuess guess_bfl_blocks(const std::vector<Layer>& layers) {
  static const std::regex hunyuan(
      "(img|txt)_mlp_fc[12]|(img|txt)_mod_linear|modulation_linear|individual_token_refiner");
  if (any_name(layers, hunyuan)) {
    return guess("HunyuanVideo", "double_blocks with img_mlp_fc / mod_linear names");
  }
  static const std::regex hidden_layers("(attn_qkv|linear1|qkv_lora\\d+)$");
  const std::optional<std::uint64_t> hidden = common_in(layers, hidden_layers);
  if (!hidden || *hidden == 3072) {
    return guess("Flux", fmt::format("double_blocks / single_blocks, hidden {}", width_text(hidden)));
  }
  return guess("unknown", fmt::format("double_blocks / single_blocks with hidden {}", *hidden));
}

// diffusers MMDiT names. Flux: transformer_blocks 0–18 and single_transformer_blocks 0–37;
// HunyuanVideo: 0–19 and 0–39 (both hidden 3072); SD3: no single blocks, hidden 1536 or 2432.
BaseModelGuess guess_diffusers_mmdit(const std::vector<Layer>& layers) {
  static const std::regex attention("^(single_)?transformer_blocks_\\d+_attn_to_[qkv]$");
  static const std::regex double_index("^transformer_blocks_(\\d{1,6})_");
  static const std::regex single_index("^single_transformer_blocks_(\\d{1,6})_");
  static const std::regex other_mmdit("img_mlp|txt_mlp|img_mod|txt_mod");  // Qwen-Image style
  const std::optional<std::uint64_t> hidden = common_in(layers, attention);
  const long doubles = max_index(layers, double_index);
  const long singles = max_index(layers, single_index);
  const std::string blocks = fmt::format("transformer_blocks up to {}, single_transformer_blocks up to {}, hidden {}",
                                         doubles, singles, width_text(hidden));
  if (any_name(layers, other_mmdit)) return guess("unknown", blocks);
  if (hidden && (*hidden == 1536 || *hidden == 2432) && singles < 0) return guess("SD3", blocks);
  if (hidden && *hidden != 3072) return guess("unknown", blocks);
  if (any_name(layers, std::regex("token_refiner"))) return guess("HunyuanVideo", blocks);
  if (doubles <= 18 && singles <= 37) return guess("Flux", blocks);
  if (doubles <= 19 && singles <= 39) return guess("HunyuanVideo", blocks);
  return guess("unknown", blocks);
}

BaseModelGuess guess_wan(const std::vector<Layer>& layers) {
  static const std::regex query("^blocks_\\d+_(self_attn_q|attn1_to_q)$");
  const std::optional<std::uint64_t> dim = common_in(layers, query);
  static const std::map<std::uint64_t, std::string_view> sizes = {{1536, "1.3B"}, {3072, "5B"}, {5120, "14B"}};
  const auto size = dim ? sizes.find(*dim) : sizes.end();
  if (dim && size == sizes.end()) return guess("unknown", fmt::format("Wan-style blocks with dim {}", *dim));
  return guess("Wan", fmt::format("blocks.N.self_attn / cross_attn / ffn, dim {}{}", width_text(dim),
                                  size != sizes.end() ? fmt::format(" ({})", size->second) : ""));
}

BaseModelGuess guess_z_image(const std::vector<Layer>& layers) {
  static const std::regex input("(attention_to_[qkv]|attention_qkv|feed_forward_w[13])$");
  const std::optional<std::uint64_t> dim = common_in(layers, input);
  const std::string evidence = fmt::format("layers.N.attention / feed_forward, dim {}", width_text(dim));
  return guess(!dim || *dim == 3840 ? "Z-Image" : "unknown", evidence);
}

BaseModelGuess guess_unet(const AdapterModel& model, const std::vector<Layer>& layers) {
  static const std::regex cross_attention("attn2_to_[kv]$");
  const std::optional<std::uint64_t> context = common_in(layers, cross_attention);
  if (context) {
    const std::string evidence = fmt::format("UNet cross-attention context {}", *context);
    if (*context == 768) return guess("SD1.5", evidence);
    if (*context == 2048) return guess("SDXL", evidence);
    return guess("unknown", evidence);
  }
  const bool second_text_encoder = std::any_of(model.modules.begin(), model.modules.end(), [](const Module& m) {
    return m.stem.starts_with("lora_te2_") || m.stem.starts_with("text_encoder_2.");
  });
  if (second_text_encoder) return guess("SDXL", "UNet with a second text encoder (te2)");
  // SDXL has no attention at the top resolution; SD1.5 has (down_blocks.0 / input_blocks.1).
  if (any_name(layers, std::regex("^(down_blocks_0_attentions|input_blocks_[12]_1_|up_blocks_3_attentions)"))) {
    return guess("SD1.5", "UNet attention at the top resolution");
  }
  return guess("unknown", "UNet without a cross-attention signature");
}

// "4 ×22, 32 ×700"
template <typename Key>
std::string histogram_text(const std::map<Key, std::size_t>& histogram) {
  std::string text;
  for (const auto& [value, count] : histogram) {
    text += fmt::format("{}{} ×{}", text.empty() ? "" : ", ", value, count);
  }
  return text;
}

template <typename Key>
std::string range_text(const std::map<Key, std::size_t>& histogram) {
  if (histogram.empty()) return "none";
  return fmt::format("min {}, max {}; {}", histogram.begin()->first, histogram.rbegin()->first,
                     histogram_text(histogram));
}

template <typename Key>
nlohmann::ordered_json range_json(const std::map<Key, std::size_t>& histogram, std::string_view key) {
  nlohmann::ordered_json json;
  json["min"] = histogram.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(histogram.begin()->first);
  json["max"] = histogram.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(histogram.rbegin()->first);
  json["histogram"] = nlohmann::ordered_json::array();
  for (const auto& [value, count] : histogram) {
    json["histogram"].push_back({{key, value}, {"modules", count}});
  }
  return json;
}

// "no", "yes (lora_adapter_metadata)", "PATH", or both.
std::string peft_config_text(const Inspection& inspection) {
  if (inspection.peft_sidecar.empty()) return inspection.peft_config ? "yes (lora_adapter_metadata)" : "no";
  return inspection.peft_sidecar + (inspection.peft_config ? "; lora_adapter_metadata" : "");
}

}  // namespace

BaseModelGuess guess_base_model(const AdapterModel& model) {
  const std::vector<Layer> layers = denoiser_layers(model);
  if (layers.empty()) return guess("unknown", model.modules.empty() ? "no modules" : "text encoder modules only");
  const auto starts = [&](const char* pattern) { return any_name(layers, std::regex(pattern)); };
  if (starts("^joint_blocks_\\d+_")) return guess("SD3", "joint_blocks (MMDiT)");
  if (starts("^(double|single)_blocks_\\d+_")) return guess_bfl_blocks(layers);
  if (starts("^(single_)?transformer_blocks_\\d+_")) return guess_diffusers_mmdit(layers);
  if (starts("^blocks_\\d+_(self_attn|cross_attn|ffn|attn[12])_")) return guess_wan(layers);
  if (starts("^(layers|noise_refiner|context_refiner)_\\d+_(attention|feed_forward)_")) return guess_z_image(layers);
  if (starts("^(down_blocks|up_blocks|mid_block|input_blocks|output_blocks|middle_block)_")) {
    return guess_unet(model, layers);
  }
  return guess("unknown", "no known block naming");
}

Inspection inspect_model(const Header& header, const AdapterModel& model, std::string_view file,
                         std::uint64_t file_size) {
  Inspection result;
  result.file = std::string(file);
  result.file_size = file_size;
  result.tensor_count = header.tensors.size();
  for (const TensorInfo& tensor : header.tensors) {
    Inspection::DTypeUse& use = result.dtypes[std::string(dtype_name(tensor.dtype))];
    ++use.tensors;
    use.bytes += tensor.nbytes();
    result.tensor_bytes += tensor.nbytes();
  }
  std::set<std::string> families;
  for (const Module& module : model.modules) {
    families.insert(module.family);
    ++result.kinds[std::string(module_kind_name(module.kind))];
    ++result.ranks[module.rank];
    if (module.alpha) {
      ++result.alphas[*module.alpha];
    } else {
      ++result.modules_without_alpha;
    }
    if (module.has_kernel()) ++result.conv_modules;
    if (module.is_dora()) ++result.dora_modules;
  }
  result.families.assign(families.begin(), families.end());
  result.module_count = model.modules.size();
  result.base_model = guess_base_model(model);
  for (const TensorInfo* tensor : model.passthrough) result.passthrough.push_back(tensor->name);
  result.peft_config = model.peft.has_value();
  return result;
}

Inspection inspect_file(const Reader& reader, const PeftSidecar* sidecar) {
  Inspection inspection = inspect_model(reader.header(), read_adapter_model(reader, sidecar), reader.path().string(),
                                        reader.file_size());
  if (sidecar != nullptr) inspection.peft_sidecar = sidecar->path.string();
  return inspection;
}

void print_inspection(std::ostream& out, const Inspection& inspection) {
  const auto line = [&](std::string_view label, const std::string& value) {
    out << fmt::format("{:<14}{}\n", label, value);
  };
  line("File", inspection.file);
  line("Size", fmt::format("{} ({} bytes), {} tensors", format_bytes(inspection.file_size), inspection.file_size,
                           inspection.tensor_count));
  line("Families", inspection.families.empty() ? "none" : fmt::format("{}", fmt::join(inspection.families, ", ")));
  line("Base model", fmt::format("{} ({})", inspection.base_model.name, inspection.base_model.evidence));
  std::string kinds;
  for (const auto& [kind, count] : inspection.kinds) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, count);
  line("Modules", fmt::format("{}{}{}; conv {}, DoRA {}", inspection.module_count, kinds.empty() ? "" : ": ", kinds,
                              inspection.conv_modules, inspection.dora_modules));
  line("Ranks", range_text(inspection.ranks));
  line("Alphas", fmt::format("{} (without alpha: {})", range_text(inspection.alphas), inspection.modules_without_alpha));
  std::string dtypes;
  for (const auto& [dtype, use] : inspection.dtypes) {
    dtypes += fmt::format("{}{} {} tensors {}", dtypes.empty() ? "" : "; ", dtype, use.tensors, format_bytes(use.bytes));
  }
  line("DTypes", dtypes.empty() ? "none" : dtypes);
  line("PEFT config", peft_config_text(inspection));
  line("Pass-through", fmt::format("{} tensor{}", inspection.passthrough.size(),
                                   inspection.passthrough.size() == 1 ? "" : "s"));
  for (const std::string& name : inspection.passthrough) line("", name);
}

std::string inspection_json(const Inspection& inspection) {
  nlohmann::ordered_json json;
  json["file"] = inspection.file;
  json["file_size"] = inspection.file_size;
  json["tensors"] = inspection.tensor_count;
  json["tensor_bytes"] = inspection.tensor_bytes;
  json["families"] = inspection.families;
  json["base_model"] = {{"name", inspection.base_model.name}, {"evidence", inspection.base_model.evidence}};
  json["modules"] = {{"count", inspection.module_count},
                     {"kinds", inspection.kinds},
                     {"conv", inspection.conv_modules},
                     {"dora", inspection.dora_modules}};
  json["ranks"] = range_json(inspection.ranks, "rank");
  json["alphas"] = range_json(inspection.alphas, "alpha");
  json["alphas"]["without_alpha"] = inspection.modules_without_alpha;
  json["dtypes"] = nlohmann::ordered_json::object();
  for (const auto& [dtype, use] : inspection.dtypes) {
    json["dtypes"][dtype] = {{"tensors", use.tensors}, {"bytes", use.bytes}};
  }
  json["peft_config"] = inspection.peft_config;
  json["peft_sidecar"] = inspection.peft_sidecar.empty() ? nlohmann::ordered_json()
                                                         : nlohmann::ordered_json(inspection.peft_sidecar);
  json["passthrough"] = inspection.passthrough;
  return json.dump(2);
}

}  // namespace lorakit
