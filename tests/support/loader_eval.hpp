#pragma once
// An independent reading of FORMATS.md §2–§3 for tests: finds the adapter modules of a safetensors
// file by key suffix and computes, per module, the dense ΔW that loaders (ComfyUI, diffusers, kohya,
// stable-diffusion.cpp) add to the base weight. Deliberately separate from lorakit's adapter code.
//
// Module stem: the key minus its longest matching suffix among
//   .lora_down.weight .lora_up.weight .lora_mid.weight  .lora_A[.default].weight .lora_B[.default].weight
//   .lora.down.weight .lora.up.weight  .lora_linear_layer.down.weight .lora_linear_layer.up.weight
//   .down.weight .up.weight .down .up  .alpha .scale  .dora_scale
//   .lora_magnitude_vector[.weight|.default.weight] .hada_w{1,2}_{a,b} .hada_t{1,2}  .lokr_w1 .lokr_w1_{a,b}
//   .lokr_w2 .lokr_w2_{a,b} .lokr_t2
// (so `x.processor.to_q_lora.down.weight` has stem `x.processor.to_q_lora`). Keys matching none are
// pass-through and ignored; so are alpha/scale/dora keys whose stem has no factors.
#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora_gen.hpp"
#include "lorakit/dtype.hpp"

namespace lorakit::testsupport {

struct EvalOptions {
  // alpha == 0: kohya and LyCORIS use scale 1; ComfyUI and stable-diffusion.cpp compute 0 (default).
  bool zero_alpha_is_rank = false;
  // A raw PEFT adapter's adapter_config.json, read as PEFT's from_pretrained reads it: every module must
  // be a `base_model.model.NAME.lora_A/B.weight` pair that target_modules (minus exclude_modules)
  // selects, PEFT builds it at the rank of the first rank_pattern key with re.match(rf"(.*\.)?({key})$",
  // NAME) (else r), and its tensors must have exactly that rank; scale = alpha / r (alpha / √r with
  // use_rslora), alpha from alpha_pattern the same way (else lora_alpha). Anything else throws
  // lorakit::Error naming the file and module. Alpha tensors and lora_adapter_metadata are then ignored.
  std::filesystem::path peft_config;
};

struct LoaderModule {
  std::string stem;
  std::string kind;                         // lora, lora_tucker, loha, loha_tucker, lokr
  std::vector<std::uint64_t> weight_shape;  // {out, in[, kernel…]}; {out, in·k} when the kernel is flattened
  std::uint64_t rank = 0;                   // the r loaders divide alpha by (0 if none applies)
  double scale = 1.0;
  std::string scale_source;  // alpha, scale, peft_metadata, peft_config, none
  bool dora = false;         // ΔW is then only the LoRA part (DoRA needs the base weight)
  Eigen::MatrixXd delta;     // scale · product: out × (in·kh·kw[·kt]), kernel axes after in
};

// All modules, sorted by stem; `select` (when given) limits which stems are computed densely.
// Throws lorakit::Error (adapter_incomplete, adapter_shape_mismatch, adapter_invalid_alpha) naming the
// file and tensor.
std::vector<LoaderModule> loader_modules(const std::filesystem::path& file, const EvalOptions& options = {},
                                         const std::function<bool(const std::string&)>& select = {});
// A file opened once, its modules computed one at a time (for files whose dense ΔWs do not all fit).
class LoaderFile {
 public:
  explicit LoaderFile(const std::filesystem::path& file, const EvalOptions& options = {});
  ~LoaderFile();
  LoaderFile(const LoaderFile&) = delete;
  LoaderFile& operator=(const LoaderFile&) = delete;

  const std::vector<std::string>& stems() const { return stems_; }  // sorted, as loader_modules orders them
  LoaderModule module(const std::string& stem) const;              // Error(adapter_incomplete) if absent

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::vector<std::string> stems_;
};
std::map<std::string, Eigen::MatrixXd> loader_deltas(const std::filesystem::path& file,
                                                     const EvalOptions& options = {});

// ‖after − before‖_F / ‖before‖_F; 0 when both are zero, +inf when only `before` is zero or the shapes
// differ.
double relative_error(const Eigen::MatrixXd& before, const Eigen::MatrixXd& after);
// Descending singular values (dense SVD in double).
Eigen::VectorXd singular_values(const Eigen::MatrixXd& m);

// A RawTensor from a matrix: its row-major elements under `shape` (product must equal m.size()).
RawTensor matrix_tensor(const std::string& name, DType dtype, std::vector<std::uint64_t> shape,
                        const Eigen::MatrixXd& m);
// A rank-0 scalar tensor (alpha, scale).
RawTensor scalar_tensor(const std::string& name, DType dtype, double value);

}  // namespace lorakit::testsupport
