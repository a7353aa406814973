// Module lists of real architectures, as the trainers adapt them (sd-scripts networks/lora.py,
// lora_flux.py, lora_sd3.py; musubi-tuner networks/lora*.py with their default exclude patterns).
#include "gen_arch.hpp"

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lorakit/error.hpp"

namespace lorakit::testsupport::detail {
namespace {

using std::to_string;

class Builder {
 public:
  explicit Builder(Arch& arch) : arch_(arch) {}
  void linear(const std::string& path, std::uint64_t out, std::uint64_t in, Component c = Component::body) {
    arch_.modules.push_back({c, path, out, in, {}});
  }
  void conv(const std::string& path, std::uint64_t out, std::uint64_t in, std::vector<std::uint64_t> kernel) {
    arch_.modules.push_back({Component::body, path, out, in, std::move(kernel)});
  }

 private:
  Arch& arch_;
};

// CLIP text encoder (HF transformers names), as kohya and diffusers both name it.
void clip_text_encoder(Builder& b, Component c, std::uint64_t width, std::uint64_t mlp, int layers) {
  for (int l = 0; l < layers; ++l) {
    const std::string p = "text_model.encoder.layers." + to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      b.linear(p + "self_attn." + proj, width, width, c);
    }
    b.linear(p + "mlp.fc1", mlp, width, c);
    b.linear(p + "mlp.fc2", width, mlp, c);
  }
}

// Transformer2DModel / SpatialTransformer: proj_in, `depth` BasicTransformerBlocks, proj_out.
// SD1.5 projections are 1×1 convs; SDXL's are linear.
void spatial_transformer(Builder& b, const std::string& base, std::uint64_t c, std::uint64_t context,
                         int depth, bool linear_proj) {
  auto proj = [&](const std::string& name) {
    if (linear_proj) {
      b.linear(base + "." + name, c, c);
    } else {
      b.conv(base + "." + name, c, c, {1, 1});
    }
  };
  proj("proj_in");
  for (int d = 0; d < depth; ++d) {
    const std::string t = base + ".transformer_blocks." + to_string(d) + ".";
    for (const char* m : {"to_q", "to_k", "to_v", "to_out.0"}) b.linear(t + "attn1." + m, c, c);
    b.linear(t + "attn2.to_q", c, c);
    b.linear(t + "attn2.to_k", c, context);
    b.linear(t + "attn2.to_v", c, context);
    b.linear(t + "attn2.to_out.0", c, c);
    b.linear(t + "ff.net.0.proj", 8 * c, c);  // GEGLU: two 4c halves
    b.linear(t + "ff.net.2", c, 4 * c);
  }
  proj("proj_out");
}

constexpr std::uint64_t kTimeEmbed = 1280;  // 4 × 320 in SD1.5 and SDXL

// diffusers ResnetBlock2D (SD1.5 through sd-scripts): kohya adapts its convs and time_emb_proj.
void diffusers_resnet(Builder& b, const std::string& base, std::uint64_t out, std::uint64_t in) {
  b.conv(base + ".conv1", out, in, {3, 3});
  b.linear(base + ".time_emb_proj", out, kTimeEmbed);
  b.conv(base + ".conv2", out, out, {3, 3});
  if (in != out) b.conv(base + ".conv_shortcut", out, in, {1, 1});
}

// SGM ResBlock (SDXL through sd-scripts' original-layout UNet).
void sgm_resblock(Builder& b, const std::string& base, std::uint64_t out, std::uint64_t in) {
  b.conv(base + ".in_layers.2", out, in, {3, 3});
  b.linear(base + ".emb_layers.1", out, kTimeEmbed);
  b.conv(base + ".out_layers.3", out, out, {3, 3});
  if (in != out) b.conv(base + ".skip_connection", out, in, {1, 1});
}

void sd15(Arch& arch, bool conv, bool text_encoder) {
  arch.is_unet = true;
  arch.base_model_version = "sd_v1";
  Builder b(arch);
  const std::vector<std::uint64_t> ch = {320, 640, 1280, 1280};
  const std::vector<bool> down_attn = {true, true, true, false};
  const std::uint64_t context = 768;
  std::vector<std::uint64_t> skips = {320};  // conv_in
  std::uint64_t prev = 320;
  for (std::size_t blk = 0; blk < 4; ++blk) {
    for (int l = 0; l < 2; ++l) {
      const std::string base = "down_blocks." + to_string(blk);
      if (conv) diffusers_resnet(b, base + ".resnets." + to_string(l), ch[blk], prev);
      if (down_attn[blk])
        spatial_transformer(b, base + ".attentions." + to_string(l), ch[blk], context, 1, false);
      prev = ch[blk];
      skips.push_back(prev);
    }
    if (blk < 3) {
      if (conv) b.conv("down_blocks." + to_string(blk) + ".downsamplers.0.conv", prev, prev, {3, 3});
      skips.push_back(prev);
    }
  }
  if (conv) diffusers_resnet(b, "mid_block.resnets.0", 1280, 1280);
  spatial_transformer(b, "mid_block.attentions.0", 1280, context, 1, false);
  if (conv) diffusers_resnet(b, "mid_block.resnets.1", 1280, 1280);
  const std::vector<std::uint64_t> up_ch = {1280, 1280, 640, 320};
  const std::vector<bool> up_attn = {false, true, true, true};
  for (std::size_t blk = 0; blk < 4; ++blk) {
    const std::string base = "up_blocks." + to_string(blk);
    for (int l = 0; l < 3; ++l) {
      const std::uint64_t in = prev + skips.back();
      skips.pop_back();
      if (conv) diffusers_resnet(b, base + ".resnets." + to_string(l), up_ch[blk], in);
      if (up_attn[blk])
        spatial_transformer(b, base + ".attentions." + to_string(l), up_ch[blk], context, 1, false);
      prev = up_ch[blk];
    }
    if (conv && blk < 3) b.conv(base + ".upsamplers.0.conv", prev, prev, {3, 3});
  }
  if (text_encoder) clip_text_encoder(b, Component::te, 768, 3072, 12);
}

void sdxl(Arch& arch, bool conv, bool text_encoder) {
  arch.is_unet = true;
  arch.base_model_version = "sdxl_base_v1-0";
  Builder b(arch);
  const std::vector<std::uint64_t> ch = {320, 640, 1280};
  const std::vector<int> depth = {0, 2, 10};
  const std::uint64_t context = 2048;
  std::vector<std::uint64_t> skips = {320};
  std::uint64_t prev = 320;
  int idx = 1;
  for (std::size_t level = 0; level < 3; ++level) {
    for (int l = 0; l < 2; ++l, ++idx) {
      const std::string base = "input_blocks." + to_string(idx);
      if (conv) sgm_resblock(b, base + ".0", ch[level], prev);
      if (depth[level] > 0) spatial_transformer(b, base + ".1", ch[level], context, depth[level], true);
      prev = ch[level];
      skips.push_back(prev);
    }
    if (level < 2) {
      if (conv) b.conv("input_blocks." + to_string(idx) + ".0.op", prev, prev, {3, 3});
      skips.push_back(prev);
      ++idx;
    }
  }
  if (conv) sgm_resblock(b, "middle_block.0", 1280, 1280);
  spatial_transformer(b, "middle_block.1", 1280, context, 10, true);
  if (conv) sgm_resblock(b, "middle_block.2", 1280, 1280);
  idx = 0;
  for (int level = 2; level >= 0; --level) {
    const auto lv = static_cast<std::size_t>(level);
    for (int l = 0; l < 3; ++l, ++idx) {
      const std::string base = "output_blocks." + to_string(idx);
      const std::uint64_t in = prev + skips.back();
      skips.pop_back();
      if (conv) sgm_resblock(b, base + ".0", ch[lv], in);
      if (depth[lv] > 0) spatial_transformer(b, base + ".1", ch[lv], context, depth[lv], true);
      prev = ch[lv];
      if (conv && level > 0 && l == 2)
        b.conv(base + (depth[lv] > 0 ? ".2" : ".1") + ".conv", prev, prev, {3, 3});
    }
  }
  if (text_encoder) {
    clip_text_encoder(b, Component::te1, 768, 3072, 12);   // CLIP-L
    clip_text_encoder(b, Component::te2, 1280, 5120, 32);  // OpenCLIP bigG
  }
}

constexpr std::uint64_t kFluxHidden = 3072;
constexpr std::uint64_t kFluxMlp = 12288;

// BFL layout, as sd-scripts lora_flux.py adapts every Linear of Double/SingleStreamBlock.
void flux_bfl(Builder& b) {
  const std::uint64_t h = kFluxHidden;
  for (int n = 0; n < 19; ++n) {
    const std::string p = "double_blocks." + to_string(n) + ".";
    for (const char* s : {"img", "txt"}) {
      const std::string q = p + s;
      b.linear(q + "_attn.qkv", 3 * h, h);
      b.linear(q + "_attn.proj", h, h);
      b.linear(q + "_mlp.0", kFluxMlp, h);
      b.linear(q + "_mlp.2", h, kFluxMlp);
      b.linear(q + "_mod.lin", 6 * h, h);
    }
  }
  for (int n = 0; n < 38; ++n) {
    const std::string p = "single_blocks." + to_string(n) + ".";
    b.linear(p + "linear1", 3 * h + kFluxMlp, h);  // qkv and mlp_in fused: 21504
    b.linear(p + "linear2", h, h + kFluxMlp);      // attn out and mlp_out fused: 15360
    b.linear(p + "modulation.lin", 3 * h, h);
  }
}

// diffusers FluxTransformer2DModel: q/k/v split; the usual PEFT targets (no norm linears).
void flux_diffusers(Builder& b) {
  const std::uint64_t h = kFluxHidden;
  for (int n = 0; n < 19; ++n) {
    const std::string p = "transformer_blocks." + to_string(n) + ".";
    for (const char* m : {"attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj",
                          "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out"}) {
      b.linear(p + m, h, h);
    }
    for (const char* ff : {"ff", "ff_context"}) {
      b.linear(p + ff + ".net.0.proj", kFluxMlp, h);
      b.linear(p + ff + ".net.2", h, kFluxMlp);
    }
  }
  for (int n = 0; n < 38; ++n) {
    const std::string p = "single_transformer_blocks." + to_string(n) + ".";
    for (const char* m : {"attn.to_q", "attn.to_k", "attn.to_v"}) b.linear(p + m, h, h);
    b.linear(p + "proj_mlp", kFluxMlp, h);
    b.linear(p + "proj_out", h, h + kFluxMlp);
  }
}

void flux(Arch& arch, PathStyle style) {
  arch.base_model_version = "flux1";
  Builder b(arch);
  if (style == PathStyle::diffusers) {
    flux_diffusers(b);
  } else {
    flux_bfl(b);
  }
}

// SD3 medium MMDiT (sd-scripts lora_sd3.py: every Linear of each SingleDiTBlock); the last
// context block is pre-only (qkv and a 2-way modulation).
void sd3(Arch& arch) {
  arch.base_model_version = "sd3";
  Builder b(arch);
  const std::uint64_t h = 1536;
  const int blocks = 24;
  for (int n = 0; n < blocks; ++n) {
    for (const char* s : {"x_block", "context_block"}) {
      const std::string p = "joint_blocks." + to_string(n) + "." + s + ".";
      const bool pre_only = n == blocks - 1 && std::string(s) == "context_block";
      b.linear(p + "attn.qkv", 3 * h, h);
      b.linear(p + "adaLN_modulation.1", (pre_only ? 2 : 6) * h, h);
      if (pre_only) continue;
      b.linear(p + "attn.proj", h, h);
      b.linear(p + "mlp.fc1", 4 * h, h);
      b.linear(p + "mlp.fc2", h, 4 * h);
    }
  }
}

// HunyuanVideo (musubi-tuner excludes img_mod/txt_mod/modulation by default).
void hunyuan(Arch& arch, bool conv) {
  arch.base_model_version = "hunyuan_video";
  Builder b(arch);
  const std::uint64_t h = 3072, mlp = 12288;
  for (int n = 0; n < 20; ++n) {
    const std::string p = "double_blocks." + to_string(n) + ".";
    for (const char* s : {"img", "txt"}) {
      const std::string q = p + s;
      b.linear(q + "_attn_qkv", 3 * h, h);
      b.linear(q + "_attn_proj", h, h);
      b.linear(q + "_mlp.fc1", mlp, h);
      b.linear(q + "_mlp.fc2", h, mlp);
    }
  }
  for (int n = 0; n < 40; ++n) {
    const std::string p = "single_blocks." + to_string(n) + ".";
    b.linear(p + "linear1", 3 * h + mlp, h);
    b.linear(p + "linear2", h, h + mlp);
  }
  if (conv) b.conv("img_in.proj", h, 16, {1, 2, 2});
}

struct WanSize {
  std::uint64_t dim, ffn;
  int blocks;
  bool i2v;
};

// Wan 2.x WanAttentionBlock linears (musubi-tuner), original names or diffusers WanTransformer3DModel.
void wan(Arch& arch, PathStyle style, bool conv, WanSize size) {
  arch.base_model_version = size.i2v ? "wan2.1_i2v_14b" : "wan2.1";
  Builder b(arch);
  const bool d = style == PathStyle::diffusers;
  const std::uint64_t h = size.dim;
  for (int n = 0; n < size.blocks; ++n) {
    const std::string p = "blocks." + to_string(n) + ".";
    const std::vector<std::pair<const char*, const char*>> attn = {
        {"self_attn.q", "attn1.to_q"},     {"self_attn.k", "attn1.to_k"},     {"self_attn.v", "attn1.to_v"},
        {"self_attn.o", "attn1.to_out.0"}, {"cross_attn.q", "attn2.to_q"},    {"cross_attn.k", "attn2.to_k"},
        {"cross_attn.v", "attn2.to_v"},    {"cross_attn.o", "attn2.to_out.0"}};
    for (const auto& [orig, diff] : attn) b.linear(p + (d ? diff : orig), h, h);
    if (size.i2v) {
      b.linear(p + (d ? "attn2.add_k_proj" : "cross_attn.k_img"), h, h);
      b.linear(p + (d ? "attn2.add_v_proj" : "cross_attn.v_img"), h, h);
    }
    b.linear(p + (d ? "ffn.net.0.proj" : "ffn.0"), size.ffn, h);
    b.linear(p + (d ? "ffn.net.2" : "ffn.2"), h, size.ffn);
  }
  if (conv) b.conv("patch_embedding", h, size.i2v ? 36 : 16, {1, 2, 2});
}

// Z-Image (S3-DiT): musubi-tuner adapts the main layers (refiners and modulation excluded).
// Its names are the diffusers ones.
void zimage(Arch& arch) {
  arch.base_model_version = "z_image";
  Builder b(arch);
  const std::uint64_t h = 3840, ffn = 10240;
  for (int n = 0; n < 30; ++n) {
    const std::string p = "layers." + to_string(n) + ".";
    for (const char* m : {"attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0"}) {
      b.linear(p + m, h, h);
    }
    b.linear(p + "feed_forward.w1", ffn, h);
    b.linear(p + "feed_forward.w2", h, ffn);
    b.linear(p + "feed_forward.w3", ffn, h);
  }
}

using ArchFn = std::function<void(Arch&, PathStyle, bool conv, bool te)>;

const std::map<std::string, std::pair<ArchFn, bool>>& registry() {  // name -> (builder, diffusers paths)
  static const std::map<std::string, std::pair<ArchFn, bool>> table = {
      {"sd15", {[](Arch& a, PathStyle, bool c, bool te) { sd15(a, c, te); }, true}},
      {"sdxl", {[](Arch& a, PathStyle, bool c, bool te) { sdxl(a, c, te); }, false}},
      {"flux", {[](Arch& a, PathStyle s, bool, bool) { flux(a, s); }, true}},
      {"sd3", {[](Arch& a, PathStyle, bool, bool) { sd3(a); }, false}},
      {"hunyuan", {[](Arch& a, PathStyle, bool c, bool) { hunyuan(a, c); }, false}},
      {"wan13b",
       {[](Arch& a, PathStyle s, bool c, bool) {
          wan(a, s, c, {1536, 8960, 30, false});
        },
        true}},
      {"wan14b",
       {[](Arch& a, PathStyle s, bool c, bool) {
          wan(a, s, c, {5120, 13824, 40, false});
        },
        true}},
      {"wan14b-i2v",
       {[](Arch& a, PathStyle s, bool c, bool) {
          wan(a, s, c, {5120, 13824, 40, true});
        },
        true}},
      {"zimage", {[](Arch& a, PathStyle, bool, bool) { zimage(a); }, true}},
  };
  return table;
}

}  // namespace

bool known_arch(const std::string& name) { return registry().count(name) != 0; }

bool has_diffusers_paths(const std::string& name) {
  const auto it = registry().find(name);
  return it != registry().end() && it->second.second;
}

std::vector<std::string> all_arch_names() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : registry()) names.push_back(name);
  return names;
}

Arch build_arch(const std::string& name, PathStyle style, bool conv, bool text_encoder) {
  const auto it = registry().find(name);
  if (it == registry().end()) throw Error(ErrorCode::invalid_argument, "unknown architecture '" + name + "'");
  Arch arch;
  it->second.first(arch, style, conv, text_encoder);
  return arch;
}

}  // namespace lorakit::testsupport::detail
