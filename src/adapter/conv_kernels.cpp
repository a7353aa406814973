// LoHa (hada_w*_b: r × in·kh·kw) and decomposed LoKr without lokr_t2 (lokr_w2_b: r × d·kh·kw) keep a conv
// kernel flattened, so the file alone cannot tell a 3×3 conv from a linear layer: loaders reshape ΔW to
// the base weight. A plain LoRA written for such a module must carry the kernel, though: kohya and A1111
// build a Conv2d down (r, in, kh, kw) for conv layers and reject a 2-D one. The conv layers of the
// SD1.5/SDXL UNets (the models LyCORIS conv training is used with) are recognised by name; any other
// module keeps the flattened 2-D form, which loaders that reshape (ComfyUI, diffusers) accept.
#include "adapter/conv_kernels.hpp"

#include <algorithm>
#include <array>
#include <regex>
#include <string>
#include <vector>

#include "lorakit/inspect.hpp"

namespace lorakit::adapter_detail {
namespace {

struct ConvLayer {
  std::regex name;  // matched against the stem with '.' read as '_'
  std::vector<std::uint64_t> kernel;
  bool sd15_only = false;  // SD2 has linear layers under the same names
};

const std::vector<ConvLayer>& conv_layers() {
  static const std::vector<ConvLayer> table = {
      // diffusers names (kohya SD1.5, PEFT): resnets, samplers, conv_in/out
      {std::regex("(^|_)resnets_\\d+_conv[12]$"), {3, 3}},
      {std::regex("(^|_)resnets_\\d+_conv_shortcut$"), {1, 1}},
      {std::regex("(^|_)(down|up)samplers_0_conv$"), {3, 3}},
      {std::regex("(^|_)conv_(in|out)$"), {3, 3}},
      // SGM names (kohya SDXL): in_layers/out_layers, skip_connection, op (down), conv (up), in/out convs
      {std::regex("(^|_)(in_layers_2|out_layers_3)$"), {3, 3}},
      {std::regex("(^|_)skip_connection$"), {1, 1}},
      {std::regex("(^|_)input_blocks_\\d+_0_op$"), {3, 3}},
      {std::regex("(^|_)output_blocks_\\d+_\\d+_conv$"), {3, 3}},
      {std::regex("(^|_)unet_(input_blocks_0_0|out_2)$"), {3, 3}},
      // SD1.5 transformer projections are 1×1 convs (linear in SD2 and SDXL)
      {std::regex("(^|_)attentions_\\d+_proj_(in|out)$"), {1, 1}, true},
  };
  return table;
}

// The factor whose second dimension holds the flattened kernel, or nullptr when the kernel is not
// flattened (plain LoRA, Tucker forms, full 4-D lokr_w2).
const TensorInfo* flattened_factor(const Module& module) {
  if (module.has_kernel()) return nullptr;
  if (module.kind == ModuleKind::loha) return module.tensor(Role::hada_w1_b);
  if (module.kind == ModuleKind::lokr && module.tensor(Role::lokr_t2) == nullptr) {
    return module.tensor(Role::lokr_w2_b);
  }
  return nullptr;
}

const ConvLayer* known_conv(const std::string& stem, bool sd15) {
  std::string name = stem;
  std::replace(name.begin(), name.end(), '.', '_');
  for (const ConvLayer& layer : conv_layers()) {
    if ((sd15 || !layer.sd15_only) && std::regex_search(name, layer.name)) return &layer;
  }
  return nullptr;
}

}  // namespace

void restore_flattened_kernels(AdapterModel& model) {
  const bool any_flattened = std::any_of(model.modules.begin(), model.modules.end(),
                                         [](const Module& m) { return flattened_factor(m) != nullptr; });
  if (!any_flattened) return;
  const bool sd15 = guess_base_model(model).name == "SD1.5";
  for (Module& module : model.modules) {
    const TensorInfo* factor = flattened_factor(module);
    if (factor == nullptr || factor->shape.size() != 2) continue;
    const ConvLayer* layer = known_conv(module.stem, sd15);
    if (layer == nullptr) continue;
    std::uint64_t kernel_size = 1;
    for (std::uint64_t k : layer->kernel) kernel_size *= k;
    // The kernel is the innermost part of the factor's flattened axis (in·kh·kw, or d·kh·kw for LoKr).
    if (factor->shape[1] % kernel_size != 0) continue;
    module.weight_shape[1] /= kernel_size;
    module.weight_shape.insert(module.weight_shape.end(), layer->kernel.begin(), layer->kernel.end());
  }
}

}  // namespace lorakit::adapter_detail
