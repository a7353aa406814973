#pragma once
// Internal to the generator: the adapted modules of each architecture, with real paths and shapes.
#include <cstdint>
#include <string>
#include <vector>

namespace lorakit::testsupport::detail {

enum class Component { body, te, te1, te2 };  // body: the UNet or the diffusion transformer

struct ArchModule {
  Component component = Component::body;
  std::string path;  // dotted module path in the chosen naming
  std::uint64_t out = 0;
  std::uint64_t in = 0;
  std::vector<std::uint64_t> kernel;  // empty: linear; {kh, kw}: conv2d; {kt, kh, kw}: conv3d
};

// Which model's module paths: the one the kohya-style trainer loads (sd-scripts: diffusers for SD1.5,
// SGM for SDXL, BFL for Flux, SD3/HunyuanVideo/Wan/Z-Image originals), or the diffusers model
// (peft, lycoris/SimpleTuner, legacy diffusers).
enum class PathStyle { trainer, diffusers };

struct Arch {
  bool is_unet = false;             // PEFT prefix "unet." rather than "transformer."
  std::string base_model_version;   // ss_base_model_version
  std::vector<ArchModule> modules;  // full-size shapes
};

bool known_arch(const std::string& name);
bool has_diffusers_paths(const std::string& name);
std::vector<std::string> all_arch_names();
// `conv`: add conv layers (3×3 resnet/sampler convs, conv3d patch embeddings). `text_encoder`: add the
// CLIP text encoders for sd15/sdxl.
Arch build_arch(const std::string& name, PathStyle style, bool conv, bool text_encoder);

}  // namespace lorakit::testsupport::detail
