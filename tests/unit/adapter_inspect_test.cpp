// `lorakit inspect`: base-model guesses from name- and shape-faithful key sets of each trainer, the
// summary statistics, the text and JSON renderings, and a real file read through lorakit::Reader.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "adapter_test_util.hpp"
#include "lorakit/inspect.hpp"

namespace lorakit {
namespace {

using test::build;
using test::make_header;
using test::Spec;

// A kohya-suffixed LoRA pair (down (r, in), up (out, r)).
struct Pair {
  std::string stem;
  std::uint64_t out;
  std::uint64_t in;
};

std::vector<Spec> kohya(const std::vector<Pair>& pairs) {
  std::vector<Spec> specs;
  for (const Pair& p : pairs) {
    specs.push_back({p.stem + ".lora_down.weight", {4, p.in}});
    specs.push_back({p.stem + ".lora_up.weight", {p.out, 4}});
  }
  return specs;
}

std::vector<Spec> peft(const std::vector<Pair>& pairs) {
  std::vector<Spec> specs;
  for (const Pair& p : pairs) {
    specs.push_back({p.stem + ".lora_A.weight", {4, p.in}});
    specs.push_back({p.stem + ".lora_B.weight", {p.out, 4}});
  }
  return specs;
}

struct GuessCase {
  std::string label;
  std::vector<Spec> tensors;
  std::string expected;
  std::string evidence_fragment;
};

void PrintTo(const GuessCase& c, std::ostream* os) { *os << c.label; }  // short ctest names

std::vector<GuessCase> guess_cases() {
  return {
      {"SD1.5 kohya", kohya({{"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 320, 768},
                             {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320},
                             {"lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_v", 320, 768},
                             {"lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768}}),
       "SD1.5", "context 768"},
      {"SD1.5 LoCon without cross-attention", kohya({{"lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320},
                                                     {"lora_unet_down_blocks_0_resnets_0_conv1", 320, 320}}),
       "SD1.5", "top resolution"},
      {"SDXL kohya", kohya({{"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 640, 2048},
                            {"lora_unet_output_blocks_0_1_transformer_blocks_0_attn1_to_q", 1280, 1280},
                            {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768},
                            {"lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280}}),
       "SDXL", "context 2048"},
      {"SDXL diffusers", peft({{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 640, 2048},
                               {"unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_v", 1280, 2048}}),
       "SDXL", "context 2048"},
      {"SDXL self-attention only, te2", kohya({{"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640},
                                               {"lora_te2_text_model_encoder_layers_0_mlp_fc1", 5120, 1280}}),
       "SDXL", "te2"},
      {"SD2 context is not guessed", kohya({{"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 320, 1024}}),
       "unknown", "context 1024"},
      {"Flux kohya", kohya({{"lora_unet_double_blocks_0_img_attn_qkv", 9216, 3072},
                            {"lora_unet_double_blocks_0_img_mlp_0", 12288, 3072},
                            {"lora_unet_double_blocks_18_txt_mod_lin", 18432, 3072},
                            {"lora_unet_single_blocks_0_linear1", 21504, 3072},
                            {"lora_unet_single_blocks_37_linear2", 3072, 15360},
                            {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768}}),
       "Flux", "hidden 3072"},
      {"Flux ComfyUI", peft({{"diffusion_model.double_blocks.0.img_attn.qkv", 9216, 3072},
                             {"diffusion_model.single_blocks.7.linear1", 21504, 3072}}),
       "Flux", "hidden 3072"},
      {"Flux diffusers", peft({{"transformer.transformer_blocks.18.attn.to_q", 3072, 3072},
                               {"transformer.transformer_blocks.0.ff.net.0.proj", 12288, 3072},
                               {"transformer.single_transformer_blocks.37.attn.to_k", 3072, 3072},
                               {"transformer.single_transformer_blocks.0.proj_mlp", 12288, 3072}}),
       "Flux", "hidden 3072"},
      {"Flux xlabs", {{"double_blocks.0.processor.qkv_lora1.down.weight", {16, 3072}},
                      {"double_blocks.0.processor.qkv_lora1.up.weight", {9216, 16}},
                      {"double_blocks.0.processor.proj_lora2.down.weight", {16, 3072}},
                      {"double_blocks.0.processor.proj_lora2.up.weight", {3072, 16}}},
       "Flux", "hidden 3072"},
      {"SD3 kohya", kohya({{"lora_unet_joint_blocks_0_x_block_attn_qkv", 4608, 1536},
                           {"lora_unet_joint_blocks_0_context_block_attn_qkv", 4608, 1536},
                           {"lora_te3_encoder_block_0_layer_0_SelfAttention_q", 4096, 4096}}),
       "SD3", "joint_blocks"},
      {"SD3 diffusers", peft({{"transformer.transformer_blocks.0.attn.to_q", 1536, 1536},
                              {"transformer.transformer_blocks.23.attn.add_k_proj", 1536, 1536}}),
       "SD3", "hidden 1536"},
      {"HunyuanVideo musubi", kohya({{"lora_unet_double_blocks_0_img_attn_qkv", 9216, 3072},
                                     {"lora_unet_double_blocks_0_img_mlp_fc1", 12288, 3072},
                                     {"lora_unet_double_blocks_19_txt_mod_linear", 18432, 3072},
                                     {"lora_unet_single_blocks_0_linear1", 21504, 3072}}),
       "HunyuanVideo", "img_mlp_fc"},
      {"HunyuanVideo diffusers", peft({{"transformer.transformer_blocks.19.attn.to_q", 3072, 3072},
                                       {"transformer.single_transformer_blocks.39.attn.to_k", 3072, 3072}}),
       "HunyuanVideo", "up to 19"},
      {"Wan 14B musubi", kohya({{"lora_unet_blocks_0_self_attn_q", 5120, 5120},
                                {"lora_unet_blocks_39_cross_attn_k_img", 5120, 5120},
                                {"lora_unet_blocks_0_ffn_0", 13824, 5120}}),
       "Wan", "14B"},
      {"Wan-Fun double underscore", kohya({{"lora_unet__blocks_0_self_attn_q", 5120, 5120}}), "Wan", "5120"},
      {"Wan 1.3B ComfyUI", peft({{"diffusion_model.blocks.0.self_attn.q", 1536, 1536},
                                 {"diffusion_model.blocks.0.ffn.0", 8960, 1536}}),
       "Wan", "1.3B"},
      {"Wan diffusers", peft({{"transformer.blocks.0.attn1.to_q", 1536, 1536},
                              {"transformer.blocks.0.ffn.net.0.proj", 8960, 1536}}),
       "Wan", "1.3B"},
      {"Z-Image musubi", kohya({{"lora_unet_layers_12_attention_to_q", 3840, 3840},
                                {"lora_unet_layers_12_feed_forward_w1", 10240, 3840}}),
       "Z-Image", "3840"},
      {"Z-Image diffusers", peft({{"transformer.noise_refiner.0.attention.to_k", 3840, 3840},
                                  {"transformer.layers.29.feed_forward.w3", 10240, 3840}}),
       "Z-Image", "3840"},
      {"Lumina2-like layers are not Z-Image", peft({{"diffusion_model.layers.0.attention.qkv", 6912, 2304}}),
       "unknown", "2304"},
      {"Qwen-Image-like blocks are not Flux", peft({{"transformer.transformer_blocks.59.img_mlp.net.0.proj", 12288, 3072},
                                                    {"transformer.transformer_blocks.59.attn.to_q", 3072, 3072}}),
       "unknown", "up to 59"},
      {"text encoder only", kohya({{"lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768}}),
       "unknown", "text encoder"},
      {"unknown names", kohya({{"lora_unet_foo_bar", 8, 8}}), "unknown", "no known block naming"},
  };
}

class GuessTest : public ::testing::TestWithParam<GuessCase> {};

TEST_P(GuessTest, FromKeysAndShapes) {
  const GuessCase& c = GetParam();
  const Header header = make_header(c.tensors);
  const BaseModelGuess guess = guess_base_model(build(header));
  EXPECT_EQ(guess.name, c.expected) << guess.evidence;
  EXPECT_NE(guess.evidence.find(c.evidence_fragment), std::string::npos) << guess.evidence;
}

INSTANTIATE_TEST_SUITE_P(BaseModels, GuessTest, ::testing::ValuesIn(guess_cases()),
                         [](const ::testing::TestParamInfo<GuessCase>& test_info) {
                           std::string name;
                           for (char ch : test_info.param.label) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

// ---- Summary ---------------------------------------------------------------------------------------

Header mixed_header() {
  const std::string a = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
  const std::string b = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v";
  const std::string c = "lora_unet_down_blocks_0_resnets_0_conv1";
  const std::string d = "lora_unet_up_blocks_1_attentions_0_proj_out";
  return make_header({
      {a + ".lora_down.weight", {4, 768}},        // F16 4·768·2 = 6144 bytes
      {a + ".lora_up.weight", {320, 4}},          // 2560
      {a + ".alpha", {}, DType::F32},             // 4
      {b + ".lora_down.weight", {4, 768}},        // 6144
      {b + ".lora_up.weight", {320, 4}},          // 2560
      {b + ".alpha", {}, DType::F32},             // 4
      {b + ".dora_scale", {320, 1}},              // 640
      {c + ".lora_down.weight", {8, 320, 3, 3}},  // 46080
      {c + ".lora_up.weight", {320, 8, 1, 1}},    // 5120
      {c + ".alpha", {}, DType::F32},             // 4
      {d + ".hada_w1_a", {640, 4}, DType::BF16},  // 5120
      {d + ".hada_w1_b", {4, 640}, DType::BF16},
      {d + ".hada_w2_a", {640, 4}, DType::BF16},
      {d + ".hada_w2_b", {4, 640}, DType::BF16},
      {"bundle_emb.sks.clip_l", {1, 768}, DType::F32},  // 3072
  });
}

Inspection mixed_inspection(const Header& header) {
  const AdapterModel model = build(header, {{"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", 2.0},
                                            {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v.alpha", 2.0},
                                            {"lora_unet_down_blocks_0_resnets_0_conv1.alpha", 8.0}});
  return inspect_model(header, model, "mixed.safetensors", 123456);
}

TEST(Inspect, Summary) {
  const Header header = mixed_header();
  const Inspection inspection = mixed_inspection(header);
  EXPECT_EQ(inspection.file, "mixed.safetensors");
  EXPECT_EQ(inspection.file_size, 123456u);
  EXPECT_EQ(inspection.tensor_count, 15u);
  EXPECT_EQ(inspection.families, (std::vector<std::string>{"kohya", "lycoris"}));
  EXPECT_EQ(inspection.base_model.name, "SD1.5");
  EXPECT_EQ(inspection.module_count, 4u);
  EXPECT_EQ(inspection.kinds, (std::map<std::string, std::size_t>{{"lora", 3}, {"loha", 1}}));
  EXPECT_EQ(inspection.conv_modules, 2u);  // resnets conv1, and the LoHa proj_out: a 1×1 conv in SD1.5
  EXPECT_EQ(inspection.dora_modules, 1u);
  EXPECT_EQ(inspection.ranks, (std::map<std::uint64_t, std::size_t>{{4, 3}, {8, 1}}));
  EXPECT_EQ(inspection.alphas, (std::map<double, std::size_t>{{2.0, 2}, {8.0, 1}}));
  EXPECT_EQ(inspection.modules_without_alpha, 1u);
  EXPECT_EQ(inspection.dtypes.at("F16").tensors, 7u);
  EXPECT_EQ(inspection.dtypes.at("F16").bytes, 6144u + 2560u + 6144u + 2560u + 640u + 46080u + 5120u);
  EXPECT_EQ(inspection.dtypes.at("F32").tensors, 4u);
  EXPECT_EQ(inspection.dtypes.at("F32").bytes, 12u + 3072u);
  EXPECT_EQ(inspection.dtypes.at("BF16").bytes, 4u * 5120u);
  EXPECT_EQ(inspection.tensor_bytes, 69248u + 3084u + 20480u);
  EXPECT_EQ(inspection.passthrough, (std::vector<std::string>{"bundle_emb.sks.clip_l"}));
  EXPECT_FALSE(inspection.peft_config);
}

TEST(Inspect, Json) {
  const Header header = mixed_header();
  const nlohmann::json json = nlohmann::json::parse(inspection_json(mixed_inspection(header)));
  EXPECT_EQ(json.at("base_model").at("name"), "SD1.5");
  EXPECT_EQ(json.at("families"), nlohmann::json::parse(R"(["kohya", "lycoris"])"));
  EXPECT_EQ(json.at("modules").at("count"), 4);
  EXPECT_EQ(json.at("modules").at("kinds").at("loha"), 1);
  EXPECT_EQ(json.at("modules").at("dora"), 1);
  EXPECT_EQ(json.at("ranks").at("min"), 4);
  EXPECT_EQ(json.at("ranks").at("max"), 8);
  EXPECT_EQ(json.at("ranks").at("histogram"), nlohmann::json::parse(R"([{"rank": 4, "modules": 3}, {"rank": 8, "modules": 1}])"));
  EXPECT_EQ(json.at("alphas").at("max"), 8.0);
  EXPECT_EQ(json.at("alphas").at("without_alpha"), 1);
  EXPECT_EQ(json.at("dtypes").at("BF16").at("tensors"), 4);
  EXPECT_EQ(json.at("passthrough"), nlohmann::json::parse(R"(["bundle_emb.sks.clip_l"])"));
  EXPECT_EQ(json.at("file_size"), 123456);
}

TEST(Inspect, JsonOfAnEmptyModelHasNullRanges) {
  const Header header = make_header({{"emb_params", {1, 8}}});
  const nlohmann::json json = nlohmann::json::parse(inspection_json(inspect_model(header, build(header), "e", 8)));
  EXPECT_TRUE(json.at("ranks").at("min").is_null());
  EXPECT_EQ(json.at("base_model").at("name"), "unknown");
  EXPECT_EQ(json.at("modules").at("count"), 0);
}

TEST(Inspect, Text) {
  const Header header = mixed_header();
  std::ostringstream out;
  print_inspection(out, mixed_inspection(header));
  const std::string text = out.str();
  for (const char* line : {"File          mixed.safetensors\n",
                           "Size          123.5 kB (123456 bytes), 15 tensors\n",
                           "Families      kohya, lycoris\n",
                           "Base model    SD1.5 (UNet cross-attention context 768)\n",
                           "Modules       4: loha 1, lora 3; conv 2, DoRA 1\n",
                           "Ranks         min 4, max 8; 4 ×3, 8 ×1\n",
                           "Alphas        min 2, max 8; 2 ×2, 8 ×1 (without alpha: 1)\n",
                           "Pass-through  1 tensor\n              bundle_emb.sks.clip_l\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing line '" << line << "' in\n" << text;
  }
}

// ---- A real file ---------------------------------------------------------------------------------

// Hand-built safetensors bytes: one kohya F32 module of rank 2 with alpha 1.5, and an embedding.
std::filesystem::path write_lora(const std::filesystem::path& dir) {
  const std::string stem = "lora_unet_single_blocks_0_linear1";
  const std::string header =
      R"({"__metadata__":{"ss_network_dim":"2"},)"
      R"(")" + stem + R"(.alpha":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"(")" + stem + R"(.lora_down.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]},)"
      R"(")" + stem + R"(.lora_up.weight":{"dtype":"F32","shape":[4,2],"data_offsets":[28,60]},)"
      R"("emb_params":{"dtype":"F32","shape":[1],"data_offsets":[60,64]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const std::uint64_t n = padded.size();
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  bytes += padded;
  const float alpha = 1.5f;
  char alpha_bytes[4];
  std::memcpy(alpha_bytes, &alpha, 4);  // little-endian host
  bytes.append(alpha_bytes, 4);
  bytes.append(60, '\0');
  const std::filesystem::path path = dir / "lora.safetensors";
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(Inspect, ReadsAlphaFromTheFile) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "adapter_inspect_test";
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = write_lora(dir);
  const Reader reader(path);
  const Inspection inspection = inspect_file(reader);
  EXPECT_EQ(inspection.file, path.string());
  EXPECT_EQ(inspection.file_size, std::filesystem::file_size(path));
  EXPECT_EQ(inspection.module_count, 1u);
  EXPECT_EQ(inspection.alphas, (std::map<double, std::size_t>{{1.5, 1}}));
  EXPECT_EQ(inspection.ranks, (std::map<std::uint64_t, std::size_t>{{2, 1}}));
  EXPECT_EQ(inspection.passthrough, (std::vector<std::string>{"emb_params"}));
  EXPECT_EQ(inspection.families, (std::vector<std::string>{"kohya"}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lorakit
