#pragma once
// The adapter model: which tensors form which module, of which kind, under which naming family,
// and the scale that loaders apply (FORMATS.md §2–§3). Every tensor of a file ends up in exactly one
// module or in the pass-through list; nothing is skipped silently.
#include <cstdint>
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

// Where a module's alpha comes from.
enum class AlphaSource { none, tensor, peft_metadata, scale_tensor };

struct Module {
  std::string stem;    // name shared by the module's tensors, e.g. "lora_unet_..._to_k"
  std::string family;  // naming family id, e.g. "kohya", "peft", "controllora" (see keys.cpp)
  ModuleKind kind = ModuleKind::lora;
  std::map<Role, const TensorInfo*> tensors;  // pointers into the Header the model was built from

  // Names a plain LoRA of this module is written under (for LoRA kinds: the input's own names;
  // for LyCORIS kinds converted to LoRA: the family's LoRA naming under the same stem).
  std::string down_name;
  std::string up_name;
  std::string alpha_name;  // tensor name for alpha in this family's convention ("" if the family has none)

  // Shape of the base weight the module patches: {out, in} or {out, in, kh, kw[, kt]}.
  std::vector<std::uint64_t> weight_shape;
  std::uint64_t rank = 0;  // inner dimension loaders divide alpha by (down.shape[0], w1_b.shape[0], ...)

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

// PEFT / diffusers adapter config carried in metadata `lora_adapter_metadata`.
struct PeftConfig {
  std::string metadata_key;  // usually "lora_adapter_metadata"
  std::string json;          // the original JSON text
};

struct AdapterModel {
  std::vector<Module> modules;                 // in order of first tensor name
  std::vector<const TensorInfo*> passthrough;  // everything else, in header order
  std::optional<PeftConfig> peft;
};

// Reads a scalar tensor (alpha, scale) as a double.
using ScalarReader = std::function<double(const TensorInfo&)>;

// Groups the tensors of `header` into modules and resolves each module's scale. Validates factor
// shapes (Error::adapter_shape_mismatch / adapter_incomplete naming file and tensor).
AdapterModel build_adapter_model(const Header& header, std::string_view file, const ScalarReader& read_scalar);

// Rewrites a PEFT adapter config for new per-module ranks: `r`/`rank_pattern` and
// `lora_alpha`/`alpha_pattern`, so that diffusers rebuilds each module with the rank written and
// alpha' (so its scale alpha'/k, or alpha'/sqrt(k) with rslora, is what the module needs).
// Keys of the maps are module stems (Module::stem).
std::string rewrite_peft_config(const PeftConfig& config, const std::map<std::string, std::uint64_t>& new_rank,
                                const std::map<std::string, double>& new_alpha);
}  // namespace lorakit
