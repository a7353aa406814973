#pragma once
// The adapter model: which tensors form which module, of which kind, under which naming family,
// and the scale that loaders apply (FORMATS.md §2–§3). Every tensor of a file ends up in exactly one
// module or in the pass-through list; nothing is skipped silently.
//
// Naming families (Module::family) and the keys they are recognised by; STEM is Module::stem:
//   "kohya"            STEM.lora_down.weight / .lora_up.weight [/ .lora_mid.weight], STEM without '.'
//                      (lora_unet_…, lora_te1_…, lora_transformer_… of OneTrainer, …)
//   "comfyui"          the same suffixes on a dotted STEM (diffusion_model.…, ai-toolkit transformer.…)
//   "lycoris"          STEM.hada_w1_a/_w1_b/_w2_a/_w2_b/_t1/_t2, STEM.lokr_w1/_w1_a/_w1_b/_w2/_w2_a/_w2_b/_t2
//                      (any STEM), and kohya suffixes on a STEM starting with "lycoris_"
//   "peft"             STEM.lora_A[.ADAPTER][.weight] / .lora_B… (ADAPTER: Module::adapter_name, e.g.
//                      "default"); DoRA STEM.lora_magnitude_vector[.ADAPTER][.weight]
//   "legacy_diffusers" STEM_lora.down.weight (…processor.to_q_lora…), STEM.lora.down.weight,
//                      STEM.lora_linear_layer.down.weight (and .up.weight)
//   "xlabs"            STEM.down.weight / .up.weight where STEM ends in _lora<N> (…processor.qkv_lora1)
//   "controllora"      STEM.down / .up, with or without .weight
// Every family: STEM.alpha (alpha), STEM.scale (stable-diffusion.cpp scale), STEM.dora_scale (DoRA)
// belong to the module of that STEM; without one they pass through. Anything else passes through.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/safetensors.hpp"

namespace lorakit {

enum class ModuleKind {
  lora,         // up · down (linear, conv k×k, conv3d: down carries the kernel)
  lora_tucker,  // up · mid · down (lora_mid)
  loha,         // (w1_a·w1_b) ⊙ (w2_a·w2_b)
  loha_tucker,  // LoHa with hada_t1 / hada_t2
  lokr,         // kron(w1, w2), each full or decomposed, w2 optionally Tucker (lokr_t2)
};
std::string_view module_kind_name(ModuleKind kind);  // "lora", "lora_tucker", "loha", ...

enum class Role {
  down, up, mid, alpha, scale, dora,
  hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b, hada_t1, hada_t2,
  lokr_w1, lokr_w1_a, lokr_w1_b, lokr_w2, lokr_w2_a, lokr_w2_b, lokr_t2,
};
std::string_view role_name(Role role);

// Where a module's alpha comes from. peft_metadata: a PEFT LoraConfig, in `lora_adapter_metadata` or in
// the adapter_config.json beside a raw PEFT adapter.
enum class AlphaSource { none, tensor, peft_metadata, scale_tensor };

struct Module {
  std::string stem;    // name shared by the module's tensors, e.g. "lora_unet_..._to_k"
  std::string family;  // naming family id (see the table at the top of this header)
  std::string adapter_name;  // PEFT adapter infix of the keys ("default" in `.lora_A.default.weight`), or ""
  ModuleKind kind = ModuleKind::lora;
  std::map<Role, const TensorInfo*> tensors;  // pointers into the Header the model was built from

  // Names a plain LoRA of this module is written under. LoRA kinds: the input's own down/up names
  // (lora_tucker: the down/up names, mid dropped). LyCORIS kinds: STEM.lora_down.weight,
  // STEM.lora_up.weight (kohya suffixes, the loaders' LoRA form for those stems).
  std::string down_name;
  std::string up_name;
  // The input's alpha tensor name if it has one; otherwise STEM.alpha for kohya, comfyui and lycoris,
  // "" for the families that carry no alpha (peft, legacy_diffusers, xlabs, controllora).
  std::string alpha_name;

  // Shape of the base weight the module patches: {out, in} or {out, in, kh, kw[, kt]}. LoHa and
  // decomposed LoKr without a Tucker core store a conv kernel flattened: they give {out, in·kh·kw}
  // unless the layer is a known SD1.5/SDXL UNet conv (src/adapter/conv_kernels.cpp).
  std::vector<std::uint64_t> weight_shape;
  // Inner dimension loaders divide alpha by: down.shape[0] (lora, lora_tucker), hada_w1_b.shape[0]
  // (LoHa), lokr_w2_b.shape[0] if w2 is decomposed else lokr_w1_b.shape[0] (LoKr). A LoKr with both
  // factors full has no divisor (scale 1); its rank is then min(a,c)·min(b,d), the bound of kron(w1, w2).
  std::uint64_t rank = 0;

  AlphaSource alpha_source = AlphaSource::none;
  std::optional<double> alpha;  // as stored (tensor value or metadata), when there is one
  double scale = 1.0;           // what loaders multiply the factor product by
  bool rslora = false;          // PEFT use_rslora: scale = alpha / sqrt(r)

  const TensorInfo* tensor(Role role) const;  // nullptr if absent
  std::uint64_t out_features() const { return weight_shape.at(0); }
  std::uint64_t in_flat() const;              // in · kh · kw [· kt]
  bool has_kernel() const { return weight_shape.size() > 2; }  // 4-D/5-D: uses the conv rank
  bool is_dora() const { return tensors.count(Role::dora) != 0; }
};

// A PEFT / diffusers adapter config: carried in metadata `lora_adapter_metadata`, or the
// adapter_config.json that PEFT's save_pretrained writes beside adapter_model.safetensors (a sidecar).
//
// Module::stem -> PEFT module name: the config is a flat JSON object whose keys are either plain
// LoraConfig fields (`r`, `lora_alpha`, `rank_pattern`, …) or component-prefixed ones
// (`transformer.r`, `text_encoder.lora_alpha`, as diffusers writes them). A stem starting with
// "COMPONENT." for a component present in the config belongs to that component and its PEFT module
// name is the rest of the stem; otherwise, if the config has plain fields, the name is the stem
// without a leading "base_model.model.". A sidecar is one plain LoraConfig (its keys are never read as
// component-prefixed). Pattern keys match a name as PEFT's get_pattern_key does: the first key (in
// file order) that equals the name or a "."-preceded suffix of it (as a regex).
struct PeftConfig {
  std::string metadata_key;  // usually "lora_adapter_metadata"; "" for a sidecar
  std::string json;          // the original JSON text

  // Filled by build_adapter_model: every module whose scale comes from this config, by Module::stem.
  struct ModuleEntry {
    std::string component;  // "" for plain (unprefixed) fields
    std::string name;       // PEFT module name (the key rank_pattern / alpha_pattern use)
    std::uint64_t rank = 0;
    double alpha = 0.0;     // resolved lora_alpha (alpha_pattern, else lora_alpha, else PEFT's default 8)
  };
  std::map<std::string, ModuleEntry> modules;

  std::filesystem::path sidecar;  // the adapter_config.json it was read from; "" for metadata
};

struct AdapterModel {
  std::vector<Module> modules;                 // ordered by stem (then adapter_name)
  std::vector<const TensorInfo*> passthrough;  // everything else, in header order
  std::optional<PeftConfig> peft;          // from `lora_adapter_metadata`
  std::optional<PeftConfig> peft_sidecar;  // from the adapter_config.json given to build_adapter_model
};

// PEFT's adapter folder (save_pretrained): the weights and, beside them, their LoraConfig.
inline constexpr std::string_view kPeftWeightsName = "adapter_model.safetensors";
inline constexpr std::string_view kPeftConfigName = "adapter_config.json";

// An adapter_config.json as read from disk.
struct PeftSidecar {
  std::filesystem::path path;
  std::string json;
};
// Throws Error(io_open / io_read) naming the file.
PeftSidecar read_peft_sidecar(const std::filesystem::path& path);
// adapter_config.json beside `adapter` when `adapter` is named adapter_model.safetensors and that file
// exists; none otherwise.
std::optional<std::filesystem::path> peft_sidecar_path(const std::filesystem::path& adapter);
// The sidecar of the weights file `adapter`: `given` when set, else adapter_config.json in the same
// folder when `adapter` is named adapter_model.safetensors (PEFT's pair) and that file exists. A file of
// another name gets a sidecar only when one is given (a folder may also hold, say, diffusers'
// pytorch_lora_weights.safetensors, which is not described by the folder's adapter_config.json).
std::optional<PeftSidecar> find_peft_sidecar(const std::filesystem::path& adapter,
                                             const std::optional<std::filesystem::path>& given);
// The weights file of an input: the input itself, or, for a folder (a PEFT adapter folder), the
// adapter_model.safetensors in it (Error(io_open) when it has none).
std::filesystem::path adapter_weights_path(const std::filesystem::path& input);

// What lorakit reads for an input (a file or a PEFT adapter folder): its weights file and the sidecar
// that scales them, `peft_config` when given (adapter_weights_path, find_peft_sidecar).
struct AdapterInput {
  std::filesystem::path weights;
  std::optional<PeftSidecar> sidecar;
  const PeftSidecar* config() const { return sidecar ? &*sidecar : nullptr; }
};
AdapterInput read_adapter_input(const std::filesystem::path& input,
                                const std::optional<std::filesystem::path>& peft_config = std::nullopt);

// Reads a scalar tensor (alpha, scale) as a double.
using ScalarReader = std::function<double(const TensorInfo&)>;

// Groups the tensors of `header` into modules and resolves each module's scale. Validates factor
// shapes (Error::adapter_shape_mismatch / adapter_incomplete naming file and tensor), factor dtypes
// (adapter_dtype_unsupported) and alpha / scale tensors (adapter_invalid_alpha: not one finite
// value). A header without any module gives an empty `modules`; callers that need one throw
// not_an_adapter. A malformed `lora_adapter_metadata` or sidecar, or one that gives a module another
// rank than its tensors have (PEFT would refuse to load it), is Error::metadata_invalid; so is a sidecar
// that gives a module another scale than the file's metadata. `sidecar`: the adapter_config.json that
// scales the PEFT modules (see PeftConfig). A file in a format that no current loader reads is
// Error::adapter_format_unsupported (the early cloneofsimo/lora `unet:N:up` keys).
AdapterModel build_adapter_model(const Header& header, std::string_view file, const ScalarReader& read_scalar,
                                 const PeftSidecar* sidecar = nullptr);
// The same for a file being read: scalars come from `reader` and must hold one value each.
AdapterModel read_adapter_model(const Reader& reader, const PeftSidecar* sidecar = nullptr);

// Rewrites a PEFT adapter config for new per-module ranks: `r`/`rank_pattern` and
// `lora_alpha`/`alpha_pattern`, so that diffusers rebuilds each module with the rank written and
// alpha' (so its scale alpha'/k, or alpha'/sqrt(k) with rslora, is what the module needs). Keys are
// matched as PEFT's get_pattern_key does (current PEFT: `(.*\.)?(KEY)$`, each pattern on its own).
// Keys of the maps are module stems (Module::stem). The modules rewritten are config.modules; one
// missing from a map keeps its current rank / alpha; stems that are not in config.modules are ignored.
// Per component, `r` and `lora_alpha` become the most common value and the patterns list, by full
// PEFT module name, every module that differs or that another key would capture; all other fields
// are kept as they were.
std::string rewrite_peft_config(const PeftConfig& config, const std::map<std::string, std::uint64_t>& new_rank,
                                const std::map<std::string, double>& new_alpha);
}  // namespace lorakit
