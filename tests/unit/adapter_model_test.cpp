// Module grouping per naming family and kind: roles, rank, weight shape, scale, output names;
// incomplete and malformed modules; pass-through keys.
#include <cmath>
#include <limits>
#include <optional>
#include <ostream>
#include <set>

#include <gtest/gtest.h>

#include "adapter_test_util.hpp"
#include "lorakit/adapter.hpp"

namespace lorakit {
namespace {

using test::build;
using test::expect_error;
using test::make_header;
using test::Spec;
using Shape = std::vector<std::uint64_t>;

struct FamilyCase {
  std::string label;
  std::vector<Spec> tensors;
  std::map<std::string, double> scalars;
  // Expected module.
  std::string stem;
  std::string family;
  std::string adapter_name;
  ModuleKind kind;
  std::map<Role, std::string> roles;
  std::uint64_t rank;
  Shape weight_shape;
  AlphaSource alpha_source;
  std::optional<double> alpha;
  double scale;
  std::string down_name;
  std::string up_name;
  std::string alpha_name;
};

void PrintTo(const FamilyCase& c, std::ostream* os) { *os << c.label; }  // short ctest names

std::vector<FamilyCase> family_cases() {
  const std::string sd15 = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  const std::string loha = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q";
  const std::string lyco = "lycoris_down_blocks_1_resnets_0_conv2";
  const std::string peft = "transformer.single_transformer_blocks.0.attn.to_k";
  const std::string peft_default = "base_model.model.transformer_blocks.3.attn.to_v";
  const std::string comfy = "diffusion_model.blocks.0.self_attn.q";
  const std::string legacy = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q";
  const std::string legacy_lora = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0";
  const std::string legacy_linear = "text_encoder.text_model.encoder.layers.0.self_attn.k_proj";
  const std::string control = "input_blocks.1.0.in_layers.2";
  const std::string xlabs = "double_blocks.0.processor.qkv_lora1";
  const std::string onetrainer = "lora_transformer_single_transformer_blocks_0_attn_to_k";
  return {
      {"kohya SD1.5 linear", {{sd15 + ".lora_down.weight", {4, 768}}, {sd15 + ".lora_up.weight", {320, 4}},
                             {sd15 + ".alpha", {}, DType::F32}},
       {{sd15 + ".alpha", 2.0}}, sd15, "kohya", "", ModuleKind::lora,
       {{Role::down, sd15 + ".lora_down.weight"}, {Role::up, sd15 + ".lora_up.weight"}, {Role::alpha, sd15 + ".alpha"}},
       4, {320, 768}, AlphaSource::tensor, 2.0, 0.5,
       sd15 + ".lora_down.weight", sd15 + ".lora_up.weight", sd15 + ".alpha"},
      {"kohya LoCon 3x3", {{conv + ".lora_down.weight", {8, 320, 3, 3}}, {conv + ".lora_up.weight", {320, 8, 1, 1}},
                          {conv + ".alpha", {1}, DType::BF16}},
       {{conv + ".alpha", 4.0}}, conv, "kohya", "", ModuleKind::lora,
       {{Role::down, conv + ".lora_down.weight"}, {Role::up, conv + ".lora_up.weight"}, {Role::alpha, conv + ".alpha"}},
       8, {320, 320, 3, 3}, AlphaSource::tensor, 4.0, 0.5,
       conv + ".lora_down.weight", conv + ".lora_up.weight", conv + ".alpha"},
      {"kohya Tucker LoCon", {{conv + ".lora_down.weight", {8, 320, 1, 1}}, {conv + ".lora_mid.weight", {8, 8, 3, 3}},
                             {conv + ".lora_up.weight", {640, 8, 1, 1}}, {conv + ".alpha", {}, DType::F32}},
       {{conv + ".alpha", 16.0}}, conv, "kohya", "", ModuleKind::lora_tucker,
       {{Role::down, conv + ".lora_down.weight"}, {Role::mid, conv + ".lora_mid.weight"},
        {Role::up, conv + ".lora_up.weight"}, {Role::alpha, conv + ".alpha"}},
       8, {640, 320, 3, 3}, AlphaSource::tensor, 16.0, 2.0,
       conv + ".lora_down.weight", conv + ".lora_up.weight", conv + ".alpha"},
      {"kohya conv3d, no alpha", {{"lora_unet_conv_in.lora_down.weight", {4, 16, 3, 3, 3}},
                                  {"lora_unet_conv_in.lora_up.weight", {32, 4, 1, 1, 1}}},
       {}, "lora_unet_conv_in", "kohya", "", ModuleKind::lora,
       {{Role::down, "lora_unet_conv_in.lora_down.weight"}, {Role::up, "lora_unet_conv_in.lora_up.weight"}},
       4, {32, 16, 3, 3, 3}, AlphaSource::none, std::nullopt, 1.0,
       "lora_unet_conv_in.lora_down.weight", "lora_unet_conv_in.lora_up.weight", "lora_unet_conv_in.alpha"},
      {"LyCORIS LoHa, kohya-style stem", {{loha + ".hada_w1_a", {640, 8}}, {loha + ".hada_w1_b", {8, 640}},
                                          {loha + ".hada_w2_a", {640, 8}}, {loha + ".hada_w2_b", {8, 640}},
                                          {loha + ".alpha", {}, DType::F16}},
       {{loha + ".alpha", 4.0}}, loha, "lycoris", "", ModuleKind::loha,
       {{Role::hada_w1_a, loha + ".hada_w1_a"}, {Role::hada_w1_b, loha + ".hada_w1_b"},
        {Role::hada_w2_a, loha + ".hada_w2_a"}, {Role::hada_w2_b, loha + ".hada_w2_b"}, {Role::alpha, loha + ".alpha"}},
       8, {640, 640}, AlphaSource::tensor, 4.0, 0.5,
       loha + ".lora_down.weight", loha + ".lora_up.weight", loha + ".alpha"},
      {"LyCORIS Tucker LoHa, lycoris_ stem",
       {{lyco + ".hada_w1_a", {4, 640}}, {lyco + ".hada_w1_b", {4, 320}}, {lyco + ".hada_t1", {4, 4, 3, 3}},
        {lyco + ".hada_w2_a", {4, 640}}, {lyco + ".hada_w2_b", {4, 320}}, {lyco + ".hada_t2", {4, 4, 3, 3}},
        {lyco + ".alpha", {}, DType::F32}},
       {{lyco + ".alpha", 2.0}}, lyco, "lycoris", "", ModuleKind::loha_tucker,
       {{Role::hada_w1_a, lyco + ".hada_w1_a"}, {Role::hada_w1_b, lyco + ".hada_w1_b"}, {Role::hada_t1, lyco + ".hada_t1"},
        {Role::hada_w2_a, lyco + ".hada_w2_a"}, {Role::hada_w2_b, lyco + ".hada_w2_b"}, {Role::hada_t2, lyco + ".hada_t2"},
        {Role::alpha, lyco + ".alpha"}},
       4, {640, 320, 3, 3}, AlphaSource::tensor, 2.0, 0.5,
       lyco + ".lora_down.weight", lyco + ".lora_up.weight", lyco + ".alpha"},
      {"LoKr full w1, decomposed w2", {{lyco + ".lokr_w1", {8, 8}}, {lyco + ".lokr_w2_a", {40, 4}},
                                       {lyco + ".lokr_w2_b", {4, 96}}, {lyco + ".alpha", {}, DType::F32}},
       {{lyco + ".alpha", 2.0}}, lyco, "lycoris", "", ModuleKind::lokr,
       {{Role::lokr_w1, lyco + ".lokr_w1"}, {Role::lokr_w2_a, lyco + ".lokr_w2_a"},
        {Role::lokr_w2_b, lyco + ".lokr_w2_b"}, {Role::alpha, lyco + ".alpha"}},
       4, {320, 768}, AlphaSource::tensor, 2.0, 0.5,
       lyco + ".lora_down.weight", lyco + ".lora_up.weight", lyco + ".alpha"},
      {"LoKr both full: scale 1 whatever alpha", {{loha + ".lokr_w1", {4, 4}}, {loha + ".lokr_w2", {80, 192}},
                                                   {loha + ".alpha", {}, DType::F32}},
       {{loha + ".alpha", 16.0}}, loha, "lycoris", "", ModuleKind::lokr,
       {{Role::lokr_w1, loha + ".lokr_w1"}, {Role::lokr_w2, loha + ".lokr_w2"}, {Role::alpha, loha + ".alpha"}},
       4 * 80, {320, 768}, AlphaSource::tensor, 16.0, 1.0,
       loha + ".lora_down.weight", loha + ".lora_up.weight", loha + ".alpha"},
      {"LoKr decomposed w1, full conv w2", {{conv + ".lokr_w1_a", {4, 2}}, {conv + ".lokr_w1_b", {2, 8}},
                                            {conv + ".lokr_w2", {80, 40, 3, 3}}, {conv + ".alpha", {}, DType::F32}},
       {{conv + ".alpha", 1.0}}, conv, "lycoris", "", ModuleKind::lokr,
       {{Role::lokr_w1_a, conv + ".lokr_w1_a"}, {Role::lokr_w1_b, conv + ".lokr_w1_b"},
        {Role::lokr_w2, conv + ".lokr_w2"}, {Role::alpha, conv + ".alpha"}},
       2, {320, 320, 3, 3}, AlphaSource::tensor, 1.0, 0.5,
       conv + ".lora_down.weight", conv + ".lora_up.weight", conv + ".alpha"},
      {"LoKr Tucker w2", {{conv + ".lokr_w1", {4, 4}}, {conv + ".lokr_t2", {2, 2, 3, 3}},
                          {conv + ".lokr_w2_a", {2, 80}}, {conv + ".lokr_w2_b", {2, 80}}, {conv + ".alpha", {}, DType::F32}},
       {{conv + ".alpha", 1.0}}, conv, "lycoris", "", ModuleKind::lokr,
       {{Role::lokr_w1, conv + ".lokr_w1"}, {Role::lokr_t2, conv + ".lokr_t2"}, {Role::lokr_w2_a, conv + ".lokr_w2_a"},
        {Role::lokr_w2_b, conv + ".lokr_w2_b"}, {Role::alpha, conv + ".alpha"}},
       2, {320, 320, 3, 3}, AlphaSource::tensor, 1.0, 0.5,
       conv + ".lora_down.weight", conv + ".lora_up.weight", conv + ".alpha"},
      {"diffusers PEFT", {{peft + ".lora_A.weight", {16, 3072}}, {peft + ".lora_B.weight", {3072, 16}}},
       {}, peft, "peft", "", ModuleKind::lora,
       {{Role::down, peft + ".lora_A.weight"}, {Role::up, peft + ".lora_B.weight"}},
       16, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0, peft + ".lora_A.weight", peft + ".lora_B.weight", ""},
      {"PEFT .default infix", {{peft_default + ".lora_A.default.weight", {8, 3072}},
                               {peft_default + ".lora_B.default.weight", {3072, 8}}},
       {}, peft_default, "peft", "default", ModuleKind::lora,
       {{Role::down, peft_default + ".lora_A.default.weight"}, {Role::up, peft_default + ".lora_B.default.weight"}},
       8, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0,
       peft_default + ".lora_A.default.weight", peft_default + ".lora_B.default.weight", ""},
      {"PEFT other adapter name", {{peft_default + ".lora_A.style.weight", {8, 3072}},
                                   {peft_default + ".lora_B.style.weight", {3072, 8}}},
       {}, peft_default, "peft", "style", ModuleKind::lora,
       {{Role::down, peft_default + ".lora_A.style.weight"}, {Role::up, peft_default + ".lora_B.style.weight"}},
       8, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0,
       peft_default + ".lora_A.style.weight", peft_default + ".lora_B.style.weight", ""},
      {"ComfyUI lora_A without .weight", {{comfy + ".lora_A", {4, 1536}}, {comfy + ".lora_B", {1536, 4}}},
       {}, comfy, "peft", "", ModuleKind::lora, {{Role::down, comfy + ".lora_A"}, {Role::up, comfy + ".lora_B"}},
       4, {1536, 1536}, AlphaSource::none, std::nullopt, 1.0, comfy + ".lora_A", comfy + ".lora_B", ""},
      {"ComfyUI / ai-toolkit lora_down", {{comfy + ".lora_down.weight", {4, 1536}}, {comfy + ".lora_up.weight", {1536, 4}}},
       {}, comfy, "comfyui", "", ModuleKind::lora,
       {{Role::down, comfy + ".lora_down.weight"}, {Role::up, comfy + ".lora_up.weight"}},
       4, {1536, 1536}, AlphaSource::none, std::nullopt, 1.0,
       comfy + ".lora_down.weight", comfy + ".lora_up.weight", comfy + ".alpha"},
      {"legacy diffusers processor", {{legacy + "_lora.down.weight", {4, 320}}, {legacy + "_lora.up.weight", {320, 4}}},
       {}, legacy, "legacy_diffusers", "", ModuleKind::lora,
       {{Role::down, legacy + "_lora.down.weight"}, {Role::up, legacy + "_lora.up.weight"}},
       4, {320, 320}, AlphaSource::none, std::nullopt, 1.0, legacy + "_lora.down.weight", legacy + "_lora.up.weight", ""},
      {"legacy diffusers .lora.", {{legacy_lora + ".lora.down.weight", {4, 1280}},
                                   {legacy_lora + ".lora.up.weight", {1280, 4}}},
       {}, legacy_lora, "legacy_diffusers", "", ModuleKind::lora,
       {{Role::down, legacy_lora + ".lora.down.weight"}, {Role::up, legacy_lora + ".lora.up.weight"}},
       4, {1280, 1280}, AlphaSource::none, std::nullopt, 1.0,
       legacy_lora + ".lora.down.weight", legacy_lora + ".lora.up.weight", ""},
      {"legacy diffusers lora_linear_layer", {{legacy_linear + ".lora_linear_layer.down.weight", {4, 768}},
                                              {legacy_linear + ".lora_linear_layer.up.weight", {768, 4}}},
       {}, legacy_linear, "legacy_diffusers", "", ModuleKind::lora,
       {{Role::down, legacy_linear + ".lora_linear_layer.down.weight"},
        {Role::up, legacy_linear + ".lora_linear_layer.up.weight"}},
       4, {768, 768}, AlphaSource::none, std::nullopt, 1.0,
       legacy_linear + ".lora_linear_layer.down.weight", legacy_linear + ".lora_linear_layer.up.weight", ""},
      {"ControlLoRA without .weight", {{control + ".down", {32, 2880}}, {control + ".up", {320, 32}}},
       {}, control, "controllora", "", ModuleKind::lora, {{Role::down, control + ".down"}, {Role::up, control + ".up"}},
       32, {320, 2880}, AlphaSource::none, std::nullopt, 1.0, control + ".down", control + ".up", ""},
      {"ControlLoRA with .weight", {{control + ".down.weight", {32, 320, 3, 3}}, {control + ".up.weight", {320, 32, 1, 1}}},
       {}, control, "controllora", "", ModuleKind::lora,
       {{Role::down, control + ".down.weight"}, {Role::up, control + ".up.weight"}},
       32, {320, 320, 3, 3}, AlphaSource::none, std::nullopt, 1.0, control + ".down.weight", control + ".up.weight", ""},
      {"xlabs Flux", {{xlabs + ".down.weight", {16, 3072}}, {xlabs + ".up.weight", {9216, 16}}},
       {}, xlabs, "xlabs", "", ModuleKind::lora, {{Role::down, xlabs + ".down.weight"}, {Role::up, xlabs + ".up.weight"}},
       16, {9216, 3072}, AlphaSource::none, std::nullopt, 1.0, xlabs + ".down.weight", xlabs + ".up.weight", ""},
      {"OneTrainer lora_transformer_", {{onetrainer + ".lora_down.weight", {16, 3072}},
                                        {onetrainer + ".lora_up.weight", {3072, 16}}, {onetrainer + ".alpha", {}, DType::BF16}},
       {{onetrainer + ".alpha", 1.0}}, onetrainer, "kohya", "", ModuleKind::lora,
       {{Role::down, onetrainer + ".lora_down.weight"}, {Role::up, onetrainer + ".lora_up.weight"},
        {Role::alpha, onetrainer + ".alpha"}},
       16, {3072, 3072}, AlphaSource::tensor, 1.0, 1.0 / 16.0,
       onetrainer + ".lora_down.weight", onetrainer + ".lora_up.weight", onetrainer + ".alpha"},
      {"alpha 0 stays scale 0", {{sd15 + ".lora_down.weight", {4, 768}}, {sd15 + ".lora_up.weight", {320, 4}},
                                 {sd15 + ".alpha", {}, DType::F32}},
       {{sd15 + ".alpha", 0.0}}, sd15, "kohya", "", ModuleKind::lora,
       {{Role::down, sd15 + ".lora_down.weight"}, {Role::up, sd15 + ".lora_up.weight"}, {Role::alpha, sd15 + ".alpha"}},
       4, {320, 768}, AlphaSource::tensor, 0.0, 0.0,
       sd15 + ".lora_down.weight", sd15 + ".lora_up.weight", sd15 + ".alpha"},
      {"stable-diffusion.cpp .scale overrides alpha",
       {{sd15 + ".lora_down.weight", {4, 768}}, {sd15 + ".lora_up.weight", {320, 4}}, {sd15 + ".alpha", {}, DType::F32},
        {sd15 + ".scale", {}, DType::F32}},
       {{sd15 + ".alpha", 4.0}, {sd15 + ".scale", 0.25}}, sd15, "kohya", "", ModuleKind::lora,
       {{Role::down, sd15 + ".lora_down.weight"}, {Role::up, sd15 + ".lora_up.weight"}, {Role::alpha, sd15 + ".alpha"},
        {Role::scale, sd15 + ".scale"}},
       4, {320, 768}, AlphaSource::scale_tensor, 4.0, 0.25,
       sd15 + ".lora_down.weight", sd15 + ".lora_up.weight", sd15 + ".alpha"},
      {"kohya DoRA dora_scale", {{sd15 + ".lora_down.weight", {4, 768}}, {sd15 + ".lora_up.weight", {320, 4}},
                                 {sd15 + ".dora_scale", {320, 1}}},
       {}, sd15, "kohya", "", ModuleKind::lora,
       {{Role::down, sd15 + ".lora_down.weight"}, {Role::up, sd15 + ".lora_up.weight"}, {Role::dora, sd15 + ".dora_scale"}},
       4, {320, 768}, AlphaSource::none, std::nullopt, 1.0,
       sd15 + ".lora_down.weight", sd15 + ".lora_up.weight", sd15 + ".alpha"},
      {"PEFT DoRA lora_magnitude_vector", {{peft + ".lora_A.weight", {16, 3072}}, {peft + ".lora_B.weight", {3072, 16}},
                                           {peft + ".lora_magnitude_vector", {3072}}},
       {}, peft, "peft", "", ModuleKind::lora,
       {{Role::down, peft + ".lora_A.weight"}, {Role::up, peft + ".lora_B.weight"},
        {Role::dora, peft + ".lora_magnitude_vector"}},
       16, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0, peft + ".lora_A.weight", peft + ".lora_B.weight", ""},
      {"PEFT DoRA lora_magnitude_vector.weight", {{peft + ".lora_A.weight", {16, 3072}},
                                                  {peft + ".lora_B.weight", {3072, 16}},
                                                  {peft + ".lora_magnitude_vector.weight", {3072}}},
       {}, peft, "peft", "", ModuleKind::lora,
       {{Role::down, peft + ".lora_A.weight"}, {Role::up, peft + ".lora_B.weight"},
        {Role::dora, peft + ".lora_magnitude_vector.weight"}},
       16, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0, peft + ".lora_A.weight", peft + ".lora_B.weight", ""},
      {"PEFT DoRA with adapter infix", {{peft_default + ".lora_A.default.weight", {8, 3072}},
                                        {peft_default + ".lora_B.default.weight", {3072, 8}},
                                        {peft_default + ".lora_magnitude_vector.default.weight", {3072}}},
       {}, peft_default, "peft", "default", ModuleKind::lora,
       {{Role::down, peft_default + ".lora_A.default.weight"}, {Role::up, peft_default + ".lora_B.default.weight"},
        {Role::dora, peft_default + ".lora_magnitude_vector.default.weight"}},
       8, {3072, 3072}, AlphaSource::none, std::nullopt, 1.0,
       peft_default + ".lora_A.default.weight", peft_default + ".lora_B.default.weight", ""},
  };
}

class FamilyTest : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(FamilyTest, GroupsOneModule) {
  const FamilyCase& c = GetParam();
  const Header header = make_header(c.tensors);
  const AdapterModel model = build(header, c.scalars);
  ASSERT_EQ(model.modules.size(), 1u);
  EXPECT_TRUE(model.passthrough.empty());
  const Module& m = model.modules[0];
  EXPECT_EQ(m.stem, c.stem);
  EXPECT_EQ(m.family, c.family);
  EXPECT_EQ(m.adapter_name, c.adapter_name);
  EXPECT_EQ(module_kind_name(m.kind), module_kind_name(c.kind));
  std::map<Role, std::string> roles;
  for (const auto& [role, tensor] : m.tensors) roles[role] = tensor->name;
  EXPECT_EQ(roles, c.roles);
  EXPECT_EQ(m.rank, c.rank);
  EXPECT_EQ(m.weight_shape, c.weight_shape);
  EXPECT_EQ(static_cast<int>(m.alpha_source), static_cast<int>(c.alpha_source));
  EXPECT_EQ(m.alpha, c.alpha);
  EXPECT_DOUBLE_EQ(m.scale, c.scale);
  EXPECT_EQ(m.down_name, c.down_name);
  EXPECT_EQ(m.up_name, c.up_name);
  EXPECT_EQ(m.alpha_name, c.alpha_name);
  EXPECT_EQ(m.is_dora(), c.roles.count(Role::dora) != 0);
  EXPECT_FALSE(model.peft.has_value());
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest, ::testing::ValuesIn(family_cases()),
                         [](const ::testing::TestParamInfo<FamilyCase>& test_info) {
                           std::string name;
                           for (char ch : test_info.param.label) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

TEST(AdapterModel, ModuleHelpers) {
  const Header header = make_header({{"lora_unet_conv_in.lora_down.weight", {4, 16, 3, 3}},
                                     {"lora_unet_conv_in.lora_up.weight", {32, 4, 1, 1}}});
  const AdapterModel model = build(header);
  const Module& m = model.modules.at(0);
  EXPECT_EQ(m.out_features(), 32u);
  EXPECT_EQ(m.in_flat(), 16u * 9u);
  EXPECT_TRUE(m.has_kernel());
  EXPECT_EQ(m.tensor(Role::down), &header.tensors[0]);
  EXPECT_EQ(m.tensor(Role::mid), nullptr);
}

TEST(AdapterModel, ModulesOrderedByStemAndPassthroughInHeaderOrder) {
  const Header header = make_header({
      {"lora_unet_b.lora_up.weight", {8, 2}},
      {"bundle_emb.sks.clip_l", {1, 768}},
      {"lora_unet_a.lora_down.weight", {2, 8}},
      {"lora_unet_b.lora_down.weight", {2, 8}},
      {"lora_unet_a.lora_up.weight", {8, 2}},
      {"lora_unet_a.diff", {8, 8}},
  });
  const AdapterModel model = build(header);
  ASSERT_EQ(model.modules.size(), 2u);
  EXPECT_EQ(model.modules[0].stem, "lora_unet_a");
  EXPECT_EQ(model.modules[1].stem, "lora_unet_b");
  ASSERT_EQ(model.passthrough.size(), 2u);
  EXPECT_EQ(model.passthrough[0], &header.tensors[1]);
  EXPECT_EQ(model.passthrough[1], &header.tensors[5]);
}

TEST(AdapterModel, NonAdapterKeysPassThrough) {
  const std::string stem = "lora_unet_mid_block_attentions_0_proj_in";
  const std::vector<Spec> specs = {
      {stem + ".lora_down.weight", {4, 1280}},
      {stem + ".lora_up.weight", {1280, 4}},
      {"lora_unet_mid_block_attentions_0_norm.w_norm", {1280}},
      {"lora_unet_mid_block_attentions_0_norm.b_norm", {1280}},
      {"lora_unet_conv_out.diff", {4, 320, 3, 3}},
      {"lora_unet_conv_out.diff_b", {4}},
      {"lora_unet_conv_out.alpha", {}, DType::F32},   // alpha of a full-diff module: no factors
      {"lora_unet_time_embedding_linear_1.set_weight", {1280, 320}},
      {"transformer.x_embedder.bias", {3072}},
      {"transformer.x.lora_B.bias", {3072}},
      {"bundle_emb.sks.clip_l", {2, 768}},
      {"emb_params", {2, 768}},
      {"lora_unet_x.scale", {}, DType::F32},          // a scale without a module
      {"lora_unet_y.dora_scale", {320, 1}},           // DoRA magnitude without a LoRA
      {"transformer.z.lora_magnitude_vector", {3072}},
      {"some.unknown.key", {3}},
      {"lora_unet_x.hada_w1_a.extra", {3}},
  };
  const Header header = make_header(specs);
  const AdapterModel model = build(header);
  ASSERT_EQ(model.modules.size(), 1u);
  EXPECT_EQ(model.modules[0].stem, stem);
  ASSERT_EQ(model.passthrough.size(), specs.size() - 2);
  for (std::size_t i = 0; i < model.passthrough.size(); ++i) {
    EXPECT_EQ(model.passthrough[i]->name, specs[i + 2].name);
  }
}

TEST(AdapterModel, EveryTensorIsInExactlyOneModuleOrPassedThrough) {
  const Header header = make_header({
      {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", {8, 768}},
      {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", {3072, 8}},
      {"lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha", {}, DType::F32},
      {"lora_unet_a.hada_w1_a", {8, 2}},
      {"lora_unet_a.hada_w1_b", {2, 8}},
      {"lora_unet_a.hada_w2_a", {8, 2}},
      {"lora_unet_a.hada_w2_b", {2, 8}},
      {"lora_unet_a.alpha", {}, DType::F32},
      {"lora_unet_a.dora_scale", {8, 1}},
      {"bundle_emb.x", {1, 4}},
  });
  const AdapterModel model = build(header, {{"lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha", 8.0},
                                            {"lora_unet_a.alpha", 2.0}});
  std::multiset<const TensorInfo*> seen(model.passthrough.begin(), model.passthrough.end());
  for (const Module& m : model.modules) {
    for (const auto& [role, tensor] : m.tensors) seen.insert(tensor);
  }
  ASSERT_EQ(seen.size(), header.tensors.size());
  for (const TensorInfo& tensor : header.tensors) EXPECT_EQ(seen.count(&tensor), 1u) << tensor.name;
}

TEST(AdapterModel, AlphaBesideAnAdapterInfixBelongsToTheOnlyModuleOfTheStem) {
  const std::string stem = "transformer_blocks.0.img_mlp.net.2";
  const Header single = make_header({{stem + ".lora_A.default.weight", {4, 12288}},
                                     {stem + ".lora_B.default.weight", {3072, 4}}, {stem + ".alpha", {}, DType::BF16}});
  const AdapterModel model = build(single, {{stem + ".alpha", 8.0}});
  ASSERT_EQ(model.modules.size(), 1u);
  EXPECT_EQ(model.modules[0].alpha_name, stem + ".alpha");
  EXPECT_DOUBLE_EQ(model.modules[0].scale, 2.0);
  EXPECT_TRUE(model.passthrough.empty());
  // Two adapters on one stem: the alpha is nobody's.
  const Header two = make_header({{stem + ".lora_A.default.weight", {4, 12288}}, {stem + ".lora_B.default.weight", {3072, 4}},
                                  {stem + ".lora_A.style.weight", {4, 12288}}, {stem + ".lora_B.style.weight", {3072, 4}},
                                  {stem + ".alpha", {}, DType::BF16}});
  const AdapterModel ambiguous = build(two);
  ASSERT_EQ(ambiguous.modules.size(), 2u);
  EXPECT_EQ(ambiguous.modules[0].adapter_name, "default");
  EXPECT_EQ(ambiguous.modules[1].adapter_name, "style");
  ASSERT_EQ(ambiguous.passthrough.size(), 1u);
  EXPECT_EQ(ambiguous.passthrough[0]->name, stem + ".alpha");
}

TEST(AdapterModel, EmptyHeaderGivesNoModules) {
  const Header header = make_header({{"emb_params", {2, 768}}});
  const AdapterModel model = build(header);
  EXPECT_TRUE(model.modules.empty());
  EXPECT_EQ(model.passthrough.size(), 1u);
}

// ---- Incomplete modules --------------------------------------------------------------------------

struct ErrorCase {
  std::string label;
  std::vector<Spec> tensors;
  ErrorCode code;
  std::string tensor;  // named in the message
  std::string fragment;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.label; }

std::vector<ErrorCase> incomplete_cases() {
  const std::string k = "lora_unet_x";
  return {
      {"down without up", {{k + ".lora_down.weight", {4, 8}}, {k + ".alpha", {}, DType::F32}},
       ErrorCode::adapter_incomplete, k + ".lora_down.weight", "without its up tensor"},
      {"up without down", {{k + ".lora_up.weight", {8, 4}}},
       ErrorCode::adapter_incomplete, k + ".lora_up.weight", "without its down tensor"},
      {"mid without up", {{k + ".lora_down.weight", {4, 8, 1, 1}}, {k + ".lora_mid.weight", {4, 4, 3, 3}}},
       ErrorCode::adapter_incomplete, k, "without its up tensor"},
      {"PEFT lora_A without lora_B", {{"transformer.a.lora_A.weight", {4, 8}}},
       ErrorCode::adapter_incomplete, "transformer.a.lora_A.weight", "without its up tensor"},
      {"hada_w1_a without w1_b", {{k + ".hada_w1_a", {8, 2}}, {k + ".hada_w2_a", {8, 2}}, {k + ".hada_w2_b", {2, 8}}},
       ErrorCode::adapter_incomplete, k, "without its hada_w1_b tensor"},
      {"hada_t1 without hada_t2", {{k + ".hada_w1_a", {2, 8}}, {k + ".hada_w1_b", {2, 8}}, {k + ".hada_w2_a", {2, 8}},
                                   {k + ".hada_w2_b", {2, 8}}, {k + ".hada_t1", {2, 2, 3, 3}}},
       ErrorCode::adapter_incomplete, k, "without its hada_t2 tensor"},
      {"lokr without w1", {{k + ".lokr_w2", {8, 8}}}, ErrorCode::adapter_incomplete, k + ".lokr_w2", "without lokr_w1"},
      {"lokr w1_a without w1_b", {{k + ".lokr_w1_a", {2, 1}}, {k + ".lokr_w2", {8, 8}}},
       ErrorCode::adapter_incomplete, k, "without its lokr_w1_b tensor"},
      {"lokr full and decomposed w1", {{k + ".lokr_w1", {2, 2}}, {k + ".lokr_w1_a", {2, 1}}, {k + ".lokr_w1_b", {1, 2}},
                                       {k + ".lokr_w2", {8, 8}}},
       ErrorCode::adapter_incomplete, k, "has both lokr_w1 and lokr_w1_a"},
      {"lokr_t2 with full w2", {{k + ".lokr_w1", {2, 2}}, {k + ".lokr_w2", {8, 8, 3, 3}}, {k + ".lokr_t2", {2, 2, 3, 3}}},
       ErrorCode::adapter_incomplete, k, "lokr_t2 with a full lokr_w2"},
      {"LoHa and LoKr tensors in one module", {{k + ".lokr_w1", {2, 2}}, {k + ".lokr_w2", {4, 4}},
                                               {k + ".hada_w1_a", {8, 2}}},
       ErrorCode::adapter_incomplete, k, "mixes LoRA, LoHa and LoKr"},
      {"LoRA and LoHa tensors in one module", {{k + ".lora_down.weight", {4, 8}}, {k + ".lora_up.weight", {8, 4}},
                                               {k + ".hada_w1_a", {8, 2}}},
       ErrorCode::adapter_incomplete, k + ".hada_w1_a", "mixes naming conventions"},
      {"two spellings of one role", {{"transformer.a.lora_A", {4, 8}}, {"transformer.a.lora_A.weight", {4, 8}},
                                     {"transformer.a.lora_B.weight", {8, 4}}},
       ErrorCode::adapter_incomplete, "transformer.a.lora_A.weight", "second down tensor"},
      {"two naming conventions", {{"a.b.lora_down.weight", {4, 8}}, {"a.b.lora_A.weight", {4, 8}}},
       ErrorCode::adapter_incomplete, "a.b.lora_A.weight", "mixes naming conventions"},
  };
}

std::vector<ErrorCase> shape_cases() {
  const std::string k = "lora_unet_x";
  return {
      {"inner dims differ", {{k + ".lora_down.weight", {4, 768}}, {k + ".lora_up.weight", {320, 8}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_up.weight", "dimension 1 is 8, expected 4"},
      {"conv up with a kernel", {{k + ".lora_down.weight", {8, 320, 3, 3}}, {k + ".lora_up.weight", {320, 8, 3, 3}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_up.weight", "1×1 kernel"},
      {"conv down with linear up", {{k + ".lora_down.weight", {8, 320, 3, 3}}, {k + ".lora_up.weight", {320, 8}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_up.weight", "must have 4 dimensions"},
      {"1-D down", {{k + ".lora_down.weight", {8}}, {k + ".lora_up.weight", {320, 8}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_down.weight", "must have 2 to 5 dimensions"},
      {"mid does not match down", {{k + ".lora_down.weight", {8, 320, 1, 1}}, {k + ".lora_mid.weight", {8, 4, 3, 3}},
                                   {k + ".lora_up.weight", {320, 8, 1, 1}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_mid.weight", "dimension 1 is 4, expected 8"},
      {"Tucker down with a kernel", {{k + ".lora_down.weight", {8, 320, 3, 3}}, {k + ".lora_mid.weight", {8, 8, 3, 3}},
                                     {k + ".lora_up.weight", {320, 8, 1, 1}}},
       ErrorCode::adapter_shape_mismatch, k + ".lora_down.weight", "1×1 kernel"},
      {"LoHa out differs", {{k + ".hada_w1_a", {320, 4}}, {k + ".hada_w1_b", {4, 768}}, {k + ".hada_w2_a", {640, 4}},
                            {k + ".hada_w2_b", {4, 768}}},
       ErrorCode::adapter_shape_mismatch, k + ".hada_w2_a", "dimension 0 is 640, expected 320"},
      {"LoHa inner dims differ", {{k + ".hada_w1_a", {320, 4}}, {k + ".hada_w1_b", {2, 768}}, {k + ".hada_w2_a", {320, 4}},
                                  {k + ".hada_w2_b", {4, 768}}},
       ErrorCode::adapter_shape_mismatch, k + ".hada_w1_b", "dimension 0 is 2, expected 4"},
      {"Tucker LoHa kernels differ", {{k + ".hada_w1_a", {2, 8}}, {k + ".hada_w1_b", {2, 8}}, {k + ".hada_t1", {2, 2, 3, 3}},
                                      {k + ".hada_w2_a", {2, 8}}, {k + ".hada_w2_b", {2, 8}}, {k + ".hada_t2", {2, 2, 1, 1}}},
       ErrorCode::adapter_shape_mismatch, k + ".hada_t2", "dimension 2 is 1, expected 3"},
      {"LoKr w1 product mismatch", {{k + ".lokr_w1_a", {4, 2}}, {k + ".lokr_w1_b", {3, 8}}, {k + ".lokr_w2", {8, 8}}},
       ErrorCode::adapter_shape_mismatch, k + ".lokr_w1_b", "dimension 0 is 3, expected 2"},
      {"LoKr Tucker w2_b mismatch", {{k + ".lokr_w1", {2, 2}}, {k + ".lokr_t2", {2, 2, 3, 3}}, {k + ".lokr_w2_a", {2, 8}},
                                     {k + ".lokr_w2_b", {3, 8}}},
       ErrorCode::adapter_shape_mismatch, k + ".lokr_t2", "dimension 1 is 2, expected 3"},
      {"zero rank", {{k + ".lora_down.weight", {0, 768}}, {k + ".lora_up.weight", {320, 0}}},
       ErrorCode::adapter_shape_mismatch, k, "empty dimension"},
  };
}

class MalformedTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(MalformedTest, ThrowsNamingFileAndTensor) {
  const ErrorCase& c = GetParam();
  const Header header = make_header(c.tensors);
  expect_error([&] { build(header, {{"lora_unet_x.alpha", 1.0}}); }, c.code,
               {"test.safetensors: tensor '", c.tensor, c.fragment});
}

const auto case_name = [](const ::testing::TestParamInfo<ErrorCase>& info) {
  std::string name;
  for (char ch : info.param.label) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
};
INSTANTIATE_TEST_SUITE_P(Incomplete, MalformedTest, ::testing::ValuesIn(incomplete_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(ShapeMismatch, MalformedTest, ::testing::ValuesIn(shape_cases()), case_name);

// ---- dtypes and alpha ------------------------------------------------------------------------------

TEST(AdapterModel, IntegerFactorIsUnsupported) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}, DType::I8},
                                     {"lora_unet_x.lora_up.weight", {8, 4}}});
  expect_error([&] { build(header); }, ErrorCode::adapter_dtype_unsupported,
               {"test.safetensors: tensor 'lora_unet_x.lora_down.weight'", "I8"});
}

TEST(AdapterModel, Fp8DoraIsUnsupported) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.dora_scale", {8, 1}, DType::F8_E4M3}});
  expect_error([&] { build(header); }, ErrorCode::adapter_dtype_unsupported, {"lora_unet_x.dora_scale", "F8_E4M3"});
}

TEST(AdapterModel, NonFiniteAlphaIsInvalid) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.alpha", {}, DType::F32}});
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    expect_error([&] { build(header, {{"lora_unet_x.alpha", bad}}); }, ErrorCode::adapter_invalid_alpha,
                 {"test.safetensors: tensor 'lora_unet_x.alpha'", "not finite"});
  }
}

TEST(AdapterModel, NonFiniteScaleIsInvalid) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.scale", {}, DType::F32}});
  expect_error([&] { build(header, {{"lora_unet_x.scale", -std::numeric_limits<double>::infinity()}}); },
               ErrorCode::adapter_invalid_alpha, {"lora_unet_x.scale", "not finite"});
}

TEST(AdapterModel, AlphaWithSeveralValuesIsInvalid) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.alpha", {2}, DType::F32}});
  expect_error([&] { build(header, {{"lora_unet_x.alpha", 1.0}}); }, ErrorCode::adapter_invalid_alpha,
               {"lora_unet_x.alpha", "one value", "[2]"});
}

TEST(AdapterModel, IntegerAlphaIsUnsupported) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.alpha", {}, DType::I64}});
  expect_error([&] { build(header, {{"lora_unet_x.alpha", 1.0}}); }, ErrorCode::adapter_dtype_unsupported,
               {"lora_unet_x.alpha", "I64"});
}

TEST(AdapterModel, NegativeAlphaKeepsItsSign) {
  const Header header = make_header({{"lora_unet_x.lora_down.weight", {4, 8}}, {"lora_unet_x.lora_up.weight", {8, 4}},
                                     {"lora_unet_x.alpha", {1}, DType::F16}});
  const AdapterModel model = build(header, {{"lora_unet_x.alpha", -2.0}});
  EXPECT_DOUBLE_EQ(model.modules.at(0).scale, -0.5);
}

TEST(AdapterModel, LokrScaleUsesDecomposedW2BeforeW1) {
  // ComfyUI / stable-diffusion.cpp: r = lokr_w2_b.shape[0] when w2 is decomposed (here 4, not w1's 2).
  const std::string k = "lora_unet_x";
  const Header header = make_header({{k + ".lokr_w1_a", {4, 2}}, {k + ".lokr_w1_b", {2, 4}},
                                     {k + ".lokr_w2_a", {16, 4}}, {k + ".lokr_w2_b", {4, 16}}, {k + ".alpha", {}, DType::F32}});
  const AdapterModel model = build(header, {{k + ".alpha", 8.0}});
  const Module& m = model.modules.at(0);
  EXPECT_EQ(m.rank, 4u);
  EXPECT_DOUBLE_EQ(m.scale, 2.0);
  EXPECT_EQ(m.weight_shape, (Shape{64, 64}));
}

// A plain LoHa stores its kernel flattened: hada_w*_a (out, r), hada_w*_b (r, in·kh·kw).
std::vector<Spec> flat_loha(const std::string& stem, std::uint64_t out, std::uint64_t in_flat) {
  return {{stem + ".hada_w1_a", {out, 4}}, {stem + ".hada_w1_b", {4, in_flat}},
          {stem + ".hada_w2_a", {out, 4}}, {stem + ".hada_w2_b", {4, in_flat}}};
}

Shape weight_of(const AdapterModel& model, std::string_view stem) {
  for (const Module& m : model.modules) {
    if (m.stem == stem) return m.weight_shape;
  }
  ADD_FAILURE() << "no module " << stem;
  return {};
}

TEST(AdapterModel, FlattenedLycorisKernelsOfKnownUnetConvsAreRestored) {
  std::vector<Spec> specs;
  auto add = [&](const std::vector<Spec>& more) { specs.insert(specs.end(), more.begin(), more.end()); };
  add(flat_loha("lora_unet_down_blocks_0_resnets_0_conv1", 320, 320 * 9));                 // SD1.5 3×3
  add(flat_loha("lora_unet_down_blocks_1_resnets_0_conv_shortcut", 640, 320));             // 1×1
  add(flat_loha("lora_unet_input_blocks_4_0_in_layers_2", 640, 320 * 9));                  // SDXL 3×3
  add(flat_loha("unet.up_blocks.0.upsamplers.0.conv", 1280, 1280 * 9));                     // PEFT names
  add(flat_loha("lora_unet_down_blocks_0_resnets_1_conv2", 320, 1000));                    // not 9·in: kept 2-D
  add(flat_loha("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2", 320, 1280 * 9));  // linear
  const std::string lokr = "lora_unet_mid_block_resnets_0_conv2";  // w2_b (r, d·3·3): d = 80, c = 16
  add({{lokr + ".lokr_w1", {16, 16}}, {lokr + ".lokr_w2_a", {80, 4}}, {lokr + ".lokr_w2_b", {4, 80 * 9}}});
  const AdapterModel model = build(make_header(specs));
  EXPECT_EQ(weight_of(model, "lora_unet_down_blocks_0_resnets_0_conv1"), (Shape{320, 320, 3, 3}));
  EXPECT_EQ(weight_of(model, "lora_unet_down_blocks_1_resnets_0_conv_shortcut"), (Shape{640, 320, 1, 1}));
  EXPECT_EQ(weight_of(model, "lora_unet_input_blocks_4_0_in_layers_2"), (Shape{640, 320, 3, 3}));
  EXPECT_EQ(weight_of(model, "unet.up_blocks.0.upsamplers.0.conv"), (Shape{1280, 1280, 3, 3}));
  EXPECT_EQ(weight_of(model, "lora_unet_down_blocks_0_resnets_1_conv2"), (Shape{320, 1000}));
  EXPECT_EQ(weight_of(model, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2"),
            (Shape{320, 1280 * 9}));
  EXPECT_EQ(weight_of(model, lokr), (Shape{1280, 1280, 3, 3}));
}

TEST(AdapterModel, TransformerProjectionsAreOneByOneConvsOnlyInSd15) {
  // SD1.5's proj_in/proj_out are 1×1 convs, SD2's are linear; the cross-attention context (768 for SD1.5,
  // 1024 for SD2) tells them apart.
  for (const std::uint64_t context : {768u, 1024u}) {
    std::vector<Spec> specs = flat_loha("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320);
    const std::vector<Spec> to_k =
        flat_loha("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 320, context);
    specs.insert(specs.end(), to_k.begin(), to_k.end());
    const AdapterModel model = build(make_header(specs));
    EXPECT_EQ(weight_of(model, "lora_unet_down_blocks_0_attentions_0_proj_in"),
              context == 768 ? (Shape{320, 320, 1, 1}) : (Shape{320, 320}))
        << "context " << context;
  }
}

}  // namespace
}  // namespace lorakit
