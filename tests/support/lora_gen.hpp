#pragma once
// Deterministic generators of realistic LoRA files for tests, the demo and the benchmarks.
//
// Module names and shapes follow the real trainers (kohya sd-scripts, musubi-tuner, diffusers/PEFT,
// ComfyUI, LyCORIS, xlabs) for each architecture; factor values have trained-like spectra. The same
// GenSpec always yields the same bytes (std::mt19937_64 per module, a portable normal sampler).
// Files are written tensor by tensor in the reference layout order with bounded memory.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lorakit/dtype.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::testsupport {

enum class LokrMode {
  w2_decomposed,    // LyCORIS default: w1 full, w2 = w2_a·w2_b when rank < max(b, d)/2, else full
  full,             // w1 and w2 full (loaders use scale 1)
  both_decomposed,  // w1 = w1_a·w1_b and w2 = w2_a·w2_b (same inner rank) where rank < max(dims)/2
};

enum class PeftMetadata {
  none,      // no lora_adapter_metadata: loaders use scale 1
  plain,     // {"r": R, "lora_alpha": A, "rank_pattern": {...}, "alpha_pattern": {...}, ...}
  prefixed,  // diffusers pipeline style: {"transformer.r": R, "transformer.lora_alpha": A, ...}
  // A raw PEFT adapter as save_pretrained writes it: base_model.model.<path>.lora_A.weight keys (no
  // text encoder), metadata {"format": "pt"}, and the plain config, with the rest of PEFT's LoraConfig
  // fields, in adapter_config.json beside the file.
  sidecar,
};

struct GenSpec {
  // sd15 | sdxl | flux | sd3 | hunyuan | wan13b | wan14b | wan14b-i2v | zimage (see arch_names()).
  std::string arch = "sd15";
  // kohya      lora_unet_…/lora_te_… stems; .lora_down.weight/.lora_up.weight/.alpha (LyCORIS kinds:
  //            .hada_*/.lokr_*/.lora_mid.weight; DoRA: .dora_scale)
  // kohya-fun  kohya with the Wan-Fun `lora_unet__` prefix (wan only)
  // lycoris    SimpleTuner: `lycoris_` + diffusers path with '_' (sd15, flux, wan, zimage)
  // peft       diffusers/PEFT: unet./transformer./text_encoder[_2]. + dotted diffusers path
  //            + .lora_A.weight/.lora_B.weight, no alpha tensor (sd15, flux, wan, zimage)
  // comfy      diffusion_model.<original path>.lora_A.weight (not sd15: its ComfyUI names differ)
  // controllora <original path>.down / .up, no `.weight` (not sd15)
  // legacy     old diffusers, sd15: attn*.processor.to_q_lora.down.weight, unet.<path>.lora.down.weight,
  //            text_encoder.<path>.lora_linear_layer.down.weight
  // xlabs      flux only: double_blocks.N.processor.{qkv,proj}_lora{1,2}.down.weight
  std::string family = "kohya";
  // lora   plain LoRA (with `conv`: 3×3 / conv3d modules as LoCon)
  // locon  lora with conv = true
  // tucker LoCon with lora_mid on k>1 kernels (implies conv)
  // dora   lora plus the magnitude vector (kohya .dora_scale (out,1[,1,1]); PEFT .lora_magnitude_vector)
  // loha   LyCORIS LoHa (hada_w1_a/…); with `tucker`, k>1 kernels get hada_t1/hada_t2
  // lokr   LyCORIS LoKr (see lokr_mode, lokr_factor); with `tucker`, decomposed conv w2 gets lokr_t2
  // LyCORIS kinds (tucker, loha, lokr) need family kohya, kohya-fun or lycoris; dora needs kohya-like or
  // peft.
  std::string kind = "lora";
  std::size_t rank = 16;
  std::size_t conv_rank = 0;         // rank of k>1 kernel modules; 0 = rank
  std::optional<double> alpha;       // default rank / 2 (kohya habit); used for every module
  std::optional<double> conv_alpha;  // default: alpha if given, else conv_rank / 2
  DType dtype = DType::F16;          // factor dtype (F16, BF16, F32)
  std::optional<DType> alpha_dtype;  // default: dtype (kohya saves alpha in the save dtype)
  bool mixed_dtypes = false;         // module i's factors use F16/BF16/F32 by i % 3; alpha in F32
  std::uint64_t seed = 1;
  unsigned shrink = 1;       // divide every width by this (>= 1), keeping names, kernels, ranks
  // The architecture's modules this many times (copy N > 1 appends "_copyN" to each path): a file N
  // times larger whose largest module is the same (memory benchmarks).
  std::size_t copies = 1;
  bool conv = false;         // include conv layers (resnets 3×3, down/upsamplers, conv3d patch embeds)
  bool tucker = false;       // Tucker cores on k>1 kernels (loha, lokr; implied by kind tucker)
  bool text_encoder = true;  // sd15/sdxl: include text-encoder modules (kohya, lycoris-less families)
  LokrMode lokr_mode = LokrMode::w2_decomposed;
  int lokr_factor = -1;  // LyCORIS `factor`: -1 = most balanced split of each dimension
  bool metadata = true;  // ss_* training metadata (kohya-like families) or "format": "pt"
  PeftMetadata peft_metadata = PeftMetadata::none;  // peft family only
  bool rslora = false;  // peft config: use_rslora (loaders scale by alpha / √r)
  // Linear module i (in module-list order) gets rank rank_cycle[i % n] and alpha alpha_cycle[i % n]
  // instead of rank / alpha; a PEFT config lists those that differ in rank_pattern / alpha_pattern.
  std::vector<std::size_t> rank_cycle;
  std::vector<double> alpha_cycle;
  bool peft_infix = false;      // peft: base_model.model.<path>.lora_A.default.weight (no text encoder)
  bool passthrough = false;     // add <stem0>.diff_b, <stem1>.bias, bundle_emb.*.string_to_param.*
  double dead_fraction = 0.03;  // probability that a module is near-dead (σ₁ ≈ 1e-8)
  bool zero_module = false;     // the second module's up (w1_a / w1 for LyCORIS) is exactly zero
  // Orthonormalise the random singular vectors (Householder QR) so that the unscaled product's
  // singular values are exactly GenModule::sigma before rounding to the dtype. Costs rows·r² per
  // factor: meant for small (shrunk) files. Needs rank <= min(out, in·k) for every module.
  bool exact_spectrum = false;
};

struct GenModule {
  std::string stem;                         // key minus its role suffix (longest suffix of FORMATS.md §3)
  std::string kind;                         // lora, lora_tucker, loha, loha_tucker, lokr
  std::vector<std::uint64_t> weight_shape;  // {out, in} or {out, in, kh, kw} / {out, in, kt, kh, kw}
  std::size_t rank = 0;                     // inner dimension
  double scale = 1.0;                       // what loaders multiply the factor product by
  // Requested singular values of the unscaled product up·down (plain LoRA modules; empty otherwise).
  // Exact before dtype rounding with exact_spectrum, approximate otherwise.
  std::vector<double> sigma;
  bool dead = false;  // σ₁ ≈ 1e-8
  bool zero = false;  // exactly zero product
  bool dora = false;
};

struct GenResult {
  std::filesystem::path path;
  std::size_t modules = 0;
  std::uint64_t bytes = 0;
  std::vector<GenModule> manifest;  // in module-list order
};

// Writes the file (AtomicFile: Error::output_exists when it exists and !overwrite), and with
// PeftMetadata::sidecar adapter_config.json beside it.
// Throws Error(invalid_argument) for an unknown arch/family/kind or an unsupported combination.
GenResult write_lora(const GenSpec& spec, const std::filesystem::path& path, bool overwrite);

// Names, dtypes and shapes of every tensor, and the metadata, without generating values.
struct GenPlan {
  std::vector<TensorSpec> tensors;
  Metadata metadata;
  std::vector<GenModule> manifest;
  std::string peft_sidecar;  // PeftMetadata::sidecar: the adapter_config.json text, else ""
};
GenPlan plan_lora(const GenSpec& spec);
// The exact file size write_lora would produce.
std::uint64_t lora_file_size(const GenSpec& spec);

std::vector<std::string> arch_names();
std::vector<std::string> family_names();
std::vector<std::string> kind_names();
// "fp16"/"f16"/"F16", "bf16", "fp32"/"f32" -> DType; Error(invalid_argument) otherwise.
DType parse_float_dtype(const std::string& name);

// ---- Low level: explicit tensors ------------------------------------------------------------------

struct RawTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::uint64_t> shape;
  std::vector<double> values;    // row-major, encoded to dtype (float dtypes)
  std::vector<std::byte> bytes;  // used instead of `values` when non-empty (any dtype, raw little-endian)
};

// Writes `tensors` in the reference layout (plan_layout), __metadata__ included when with_metadata.
void write_tensors(const std::vector<RawTensor>& tensors, const Metadata& metadata,
                   const std::filesystem::path& path, bool overwrite = true, bool with_metadata = true);

}  // namespace lorakit::testsupport
