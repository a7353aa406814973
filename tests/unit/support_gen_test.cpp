// The LoRA generator: determinism, real module lists and sizes, spectra, and agreement with the
// independent loader evaluator for every family and kind.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "loader_eval.hpp"
#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"
#include "scratch_folder.hpp"

namespace lorakit::testsupport {
namespace {

// The running test's own folder: ctest runs tests in parallel processes.
class Generator : public ::testing::Test {
 protected:
  std::filesystem::path temp_file(const std::string& name) const { return scratch_ / (name + ".safetensors"); }

 private:
  testutil::ScratchFolder scratch_;
};

std::vector<char> bytes_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

GenSpec tiny(const std::string& arch, const std::string& family = "kohya", const std::string& kind = "lora") {
  GenSpec spec;
  spec.arch = arch;
  spec.family = family;
  spec.kind = kind;
  spec.rank = 4;
  spec.shrink = 16;
  return spec;
}

const TensorSpec* find(const GenPlan& plan, const std::string& name) {
  for (const auto& t : plan.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

TEST_F(Generator, SameSpecSameBytesOtherSeedOtherBytes) {
  GenSpec spec = tiny("sd15");
  spec.conv = true;
  spec.passthrough = true;
  const auto a = temp_file("det_a");
  const auto b = temp_file("det_b");
  const auto c = temp_file("det_c");
  write_lora(spec, a, true);
  write_lora(spec, b, true);
  spec.seed = 2;
  write_lora(spec, c, true);
  EXPECT_EQ(bytes_of(a), bytes_of(b));
  EXPECT_NE(bytes_of(a), bytes_of(c));
  EXPECT_EQ(bytes_of(a).size(), bytes_of(c).size());
}

// Pinned outputs: golden CLI tests and benchmarks rely on the generator never drifting. If a deliberate
// generator change alters these, every golden file made from lorakit-gen must be regenerated.
TEST_F(Generator, OutputIsPinned) {
  GenSpec sd15 = tiny("sd15");
  sd15.conv = true;
  sd15.passthrough = true;
  sd15.seed = 7;
  GenSpec flux = tiny("flux", "kohya", "lokr");
  flux.shrink = 32;
  flux.dtype = DType::BF16;
  flux.seed = 7;
  const std::vector<std::pair<GenSpec, std::string>> pinned = {
      {sd15, "48c378ba7c3794f86e0e846e49d6f34751bd04349fa173d0ee6445397e8b001e"},
      {flux, "0fb79202c04ffc4bc7b84e8f0082a9e060ac8e7d0562164baf624cf8ec4d7a83"}};
  for (const auto& [spec, hash] : pinned) {
    const auto path = temp_file("pinned_" + spec.arch);
    write_lora(spec, path, true);
    const std::vector<char> bytes = bytes_of(path);
    EXPECT_EQ(sha256_hex(std::as_bytes(std::span(bytes))), hash) << spec.arch;
  }
}

TEST_F(Generator, RefusesToOverwriteUnlessAsked) {
  const auto path = temp_file("exists");
  write_lora(tiny("zimage"), path, true);
  try {
    write_lora(tiny("zimage"), path, false);
    FAIL() << "expected output_exists";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::output_exists);
  }
}

TEST_F(Generator, RejectsUnknownOrUnsupportedCombinations) {
  for (const GenSpec& spec :
       {tiny("sd2"), tiny("sd15", "nope"), tiny("sd15", "kohya", "glora"), tiny("sdxl", "peft"),
        tiny("sd15", "peft", "loha"), tiny("sd15", "xlabs"), tiny("flux", "kohya-fun")}) {
    try {
      plan_lora(spec);
      FAIL() << spec.arch << " " << spec.family << " " << spec.kind;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    }
  }
}

// Parameters per unit of rank, counted from the published model configurations (not the generator):
// SD1.5 transformer at width c: proj_in/out 2·2c, attn1 4·2c, attn2 q/out 2·2c + k/v 2(768+c),
// ff 9c + 5c  =>  32c + 1536; 5 transformers each at 320 and 640, 6 at 1280. CLIP-L layer: 13824.
TEST_F(Generator, FullSizeSd15Rank128MatchesTheKnownSize) {
  GenSpec spec;
  spec.arch = "sd15";
  spec.rank = 128;
  const GenPlan plan = plan_lora(spec);
  const std::uint64_t per_rank =
      5 * (32 * 320 + 1536) + 5 * (32 * 640 + 1536) + 6 * (32 * 1280 + 1536) + 12 * 13824;
  EXPECT_EQ(per_rank, 589824u);
  EXPECT_EQ(plan.manifest.size(), 16u * 12 + 12 * 6);
  const Layout layout = plan_layout(plan.tensors, plan.metadata, true);
  EXPECT_EQ(layout.data_size, per_rank * 128 * 2 + plan.manifest.size() * 2);  // fp16 factors + fp16 alphas
  EXPECT_EQ(lora_file_size(spec), layout.file_size());
  EXPECT_NEAR(static_cast<double>(layout.file_size()) / 1e6, 151.0, 0.5);

  const auto* to_k =
      find(plan, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight");
  ASSERT_NE(to_k, nullptr);
  EXPECT_EQ(to_k->shape, (std::vector<std::uint64_t>{128, 768}));
  const auto* proj_in = find(plan, "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight");
  ASSERT_NE(proj_in, nullptr);
  EXPECT_EQ(proj_in->shape, (std::vector<std::uint64_t>{1280, 128, 1, 1}));
  ASSERT_NE(find(plan, "lora_te_text_model_encoder_layers_11_mlp_fc2.alpha"), nullptr);
  EXPECT_EQ(plan.metadata.at("ss_network_dim"), "128");
  EXPECT_EQ(plan.metadata.at("ss_network_alpha"), "64.0");
}

// SDXL: transformer block at width c = 28c + 4096 (context 2048); 640 ×2 blocks in 5 transformers,
// 1280 ×10 in 6; CLIP-L 12 × 13824, bigG 32 × 23040.  Flux: double block 2 × 70656, single 55296.
TEST_F(Generator, SdxlAndFluxParameterCounts) {
  GenSpec sdxl;
  sdxl.arch = "sdxl";
  sdxl.rank = 32;
  const GenPlan xl = plan_lora(sdxl);
  const std::uint64_t xl_per_rank = 5 * (4 * 640 + 2 * (28 * 640 + 4096)) +
                                    6 * (4 * 1280 + 10 * (28 * 1280 + 4096)) + 12 * 13824 + 32 * 23040;
  EXPECT_EQ(plan_layout(xl.tensors, xl.metadata, true).data_size,
            xl_per_rank * 32 * 2 + xl.manifest.size() * 2);
  EXPECT_EQ(xl.manifest.size(), 5u * 22 + 6 * 102 + 72 + 192);
  ASSERT_NE(find(xl, "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.lora_down.weight"), nullptr);
  ASSERT_NE(find(xl, "lora_unet_output_blocks_2_1_transformer_blocks_9_ff_net_2.lora_up.weight"), nullptr);
  ASSERT_NE(find(xl, "lora_te2_text_model_encoder_layers_31_self_attn_out_proj.lora_up.weight"), nullptr);

  GenSpec flux;
  flux.arch = "flux";
  flux.rank = 32;
  flux.dtype = DType::BF16;
  const GenPlan fx = plan_lora(flux);
  EXPECT_EQ(fx.manifest.size(), 19u * 10 + 38 * 3);
  EXPECT_EQ(plan_layout(fx.tensors, fx.metadata, true).data_size,
            (19 * 141312 + 38 * 55296) * 32 * 2 + fx.manifest.size() * 2);
  const auto* linear1 = find(fx, "lora_unet_single_blocks_0_linear1.lora_up.weight");
  ASSERT_NE(linear1, nullptr);
  EXPECT_EQ(linear1->shape, (std::vector<std::uint64_t>{21504, 32}));
  EXPECT_EQ(linear1->dtype, DType::BF16);
  const auto* linear2 = find(fx, "lora_unet_single_blocks_37_linear2.lora_down.weight");
  ASSERT_NE(linear2, nullptr);
  EXPECT_EQ(linear2->shape, (std::vector<std::uint64_t>{32, 15360}));
}

TEST_F(Generator, CopiesRepeatTheModulesUnderNewNamesWithTheSameShapes) {
  GenSpec once;
  once.arch = "flux";
  once.rank = 32;
  GenSpec thrice = once;
  thrice.copies = 3;
  const GenPlan one = plan_lora(once);
  const GenPlan three = plan_lora(thrice);
  EXPECT_EQ(three.manifest.size(), 3 * one.manifest.size());
  EXPECT_EQ(plan_layout(three.tensors, three.metadata, true).data_size,
            3 * plan_layout(one.tensors, one.metadata, true).data_size);
  const auto* copy = find(three, "lora_unet_single_blocks_0_linear1_copy3.lora_up.weight");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->shape, find(one, "lora_unet_single_blocks_0_linear1.lora_up.weight")->shape);
}

TEST_F(Generator, VideoAndZImageModuleLists) {
  GenSpec wan = tiny("wan14b-i2v");
  wan.shrink = 1;
  wan.conv = true;
  const GenPlan w = plan_lora(wan);
  EXPECT_EQ(w.manifest.size(), 40u * 12 + 1);
  const auto* ffn = find(w, "lora_unet_blocks_39_ffn_0.lora_up.weight");
  ASSERT_NE(ffn, nullptr);
  EXPECT_EQ(ffn->shape, (std::vector<std::uint64_t>{13824, 4}));
  ASSERT_NE(find(w, "lora_unet_blocks_0_cross_attn_k_img.alpha"), nullptr);
  const auto* patch = find(w, "lora_unet_patch_embedding.lora_down.weight");
  ASSERT_NE(patch, nullptr);
  EXPECT_EQ(patch->shape, (std::vector<std::uint64_t>{4, 36, 1, 2, 2}));

  GenSpec fun = tiny("wan13b", "kohya-fun");
  ASSERT_NE(find(plan_lora(fun), "lora_unet__blocks_29_self_attn_o.lora_down.weight"), nullptr);

  GenSpec hv = tiny("hunyuan");
  hv.shrink = 1;
  const GenPlan h = plan_lora(hv);
  EXPECT_EQ(h.manifest.size(), 20u * 8 + 40 * 2);
  ASSERT_NE(find(h, "lora_unet_double_blocks_19_txt_mlp_fc1.lora_up.weight"), nullptr);

  GenSpec z = tiny("zimage");
  z.shrink = 1;
  const GenPlan zp = plan_lora(z);
  EXPECT_EQ(zp.manifest.size(), 30u * 7);
  const auto* w2 = find(zp, "lora_unet_layers_12_feed_forward_w2.lora_down.weight");
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->shape, (std::vector<std::uint64_t>{4, 10240}));

  GenSpec peft = tiny("flux", "peft");
  ASSERT_NE(find(plan_lora(peft), "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight"),
            nullptr);
}

// With orthonormal singular vectors in fp32, the evaluator's ΔW/scale has exactly the requested
// spectrum (independent dense SVD), and spectra decay.
TEST_F(Generator, SpectraAreAsRequested) {
  GenSpec spec = tiny("sd15");
  spec.shrink = 8;
  spec.rank = 8;
  spec.dtype = DType::F32;
  spec.exact_spectrum = true;
  spec.dead_fraction = 0.2;
  const auto path = temp_file("spectrum");
  const GenResult result = write_lora(spec, path, true);
  std::map<std::string, GenModule> manifest;
  for (const auto& m : result.manifest) manifest[m.stem] = m;
  int dead = 0;
  int decaying = 0;
  for (const LoaderModule& mod : loader_modules(path)) {
    const GenModule& want = manifest.at(mod.stem);
    ASSERT_EQ(want.sigma.size(), 8u);
    const Eigen::VectorXd got = singular_values(mod.delta / mod.scale);
    for (std::size_t i = 0; i < 8; ++i) {
      EXPECT_NEAR(got(static_cast<Eigen::Index>(i)), want.sigma[i], 1e-5 * want.sigma[0])
          << mod.stem << " σ" << i;
    }
    EXPECT_LT(got(8), 1e-5 * want.sigma[0]);  // rank 8 exactly
    dead += want.dead ? 1 : 0;
    if (want.dead) {
      EXPECT_NEAR(got(0), 1e-8, 1e-12);
    }
    decaying += want.sigma[7] < 0.5 * want.sigma[0] ? 1 : 0;
  }
  EXPECT_GT(dead, 0);
  EXPECT_GT(decaying, static_cast<int>(result.modules) / 2);
}

// Without exact_spectrum the Gaussian directions are only nearly orthogonal: σ₁ stays close.
TEST_F(Generator, DefaultSpectraAreApproximatelyAsRequested) {
  GenSpec spec = tiny("flux");
  spec.shrink = 4;
  spec.rank = 8;
  spec.dtype = DType::BF16;
  spec.dead_fraction = 0;
  const auto path = temp_file("approx");
  const GenResult result = write_lora(spec, path, true);
  const auto& first = result.manifest.front();
  const auto mods = loader_modules(path, {}, [&](const std::string& s) { return s == first.stem; });
  const Eigen::VectorXd got = singular_values(mods.at(0).delta / mods.at(0).scale);
  EXPECT_NEAR(got(0) / first.sigma[0], 1.0, 0.15);
  EXPECT_LT(got(8), 1e-3 * got(0));
}

TEST_F(Generator, ZeroModuleDtypesMetadataAndPassThrough) {
  GenSpec spec = tiny("sd15");
  spec.zero_module = true;
  spec.passthrough = true;
  spec.mixed_dtypes = true;
  const auto path = temp_file("extras");
  const GenResult result = write_lora(spec, path, true);
  ASSERT_TRUE(result.manifest[1].zero);
  const Reader reader(path);
  EXPECT_EQ(reader.file_size(), result.bytes);
  EXPECT_NE(reader.header().metadata.at("ss_training_comment").find("日本語"), std::string::npos);
  std::map<DType, int> dtypes;
  for (const auto& t : reader.header().tensors) ++dtypes[t.dtype];
  EXPECT_GT(dtypes[DType::F16], 0);
  EXPECT_GT(dtypes[DType::BF16], 0);
  EXPECT_GT(dtypes[DType::F32], 0);
  ASSERT_NE(reader.header().find(result.manifest[0].stem + ".diff_b"), nullptr);
  ASSERT_NE(reader.header().find("bundle_emb.lk_token.string_to_param.*"), nullptr);
  const auto deltas = loader_deltas(path);
  EXPECT_EQ(deltas.size(), result.modules);
  EXPECT_EQ(deltas.at(result.manifest[1].stem).norm(), 0.0);
  EXPECT_GT(deltas.at(result.manifest[0].stem).norm(), 0.0);
}

// save_pretrained's layout: base_model.model.* keys, no lora_adapter_metadata, the LoraConfig beside the
// file; cycled ranks and alphas land in rank_pattern / alpha_pattern, and the evaluator reading that
// config gets the generator's scales.
TEST_F(Generator, RawPeftAdapterWithItsConfigBesideIt) {
  GenSpec spec = tiny("sd15", "peft");
  spec.peft_metadata = PeftMetadata::sidecar;
  spec.rslora = true;
  spec.rank_cycle = {4, 2};
  spec.alpha_cycle = {8, 3};
  const auto path = temp_file("adapter_model");
  const GenResult result = write_lora(spec, path, true);
  const Reader reader(path);
  EXPECT_EQ(reader.header().metadata, (Metadata{{"format", "pt"}}));
  for (const TensorInfo& tensor : reader.header().tensors) {
    EXPECT_TRUE(tensor.name.starts_with("base_model.model.") && tensor.name.find(".lora_") != std::string::npos &&
                tensor.name.ends_with(".weight") && tensor.name.find("default") == std::string::npos)
        << tensor.name;
  }
  const std::filesystem::path config = path.parent_path() / "adapter_config.json";
  const nlohmann::json json = nlohmann::json::parse(std::ifstream(config));
  EXPECT_EQ(json.at("r"), 4);
  EXPECT_EQ(json.at("use_rslora"), true);
  EXPECT_EQ(json.at("peft_type"), "LORA");
  EXPECT_EQ(json.at("rank_pattern").size(), result.modules / 2);
  EXPECT_EQ(json.at("alpha_pattern").size(), result.modules);  // lora_alpha is rank / 2, no module has it
  EvalOptions options;
  options.peft_config = config;
  const auto modules = loader_modules(path, options);
  ASSERT_EQ(modules.size(), result.manifest.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const auto want = std::find_if(result.manifest.begin(), result.manifest.end(),
                                   [&](const GenModule& m) { return m.stem == modules[i].stem; });
    ASSERT_NE(want, result.manifest.end());
    EXPECT_DOUBLE_EQ(modules[i].scale, want->scale);
    EXPECT_DOUBLE_EQ(want->scale * std::sqrt(static_cast<double>(want->rank)), want->rank == 4 ? 8.0 : 3.0);
  }
}

struct Combo {
  std::string arch, family, kind;
  bool tucker = false;
  PeftMetadata peft = PeftMetadata::none;
};

// Generator and evaluator are two readings of FORMATS.md: they must agree on every module's stem,
// kind, rank, scale and element count, and every ΔW must be finite and (unless zero) nonzero.
TEST_F(Generator, EvaluatorAgreesForEveryFamilyAndKind) {
  const std::vector<Combo> combos = {
      {"sd15", "kohya", "lora"},
      {"sd15", "kohya", "locon"},
      {"sd15", "kohya", "tucker"},
      {"sd15", "kohya", "dora"},
      {"sd15", "kohya", "loha"},
      {"sd15", "kohya", "loha", true},
      {"sd15", "kohya", "lokr"},
      {"sd15", "kohya", "lokr", true},
      {"sd15", "lycoris", "lora"},
      {"flux", "lycoris", "lokr"},
      {"sd15", "peft", "lora", false, PeftMetadata::prefixed},
      {"flux", "peft", "dora", false, PeftMetadata::plain},
      {"wan13b", "peft", "lora"},
      {"zimage", "comfy", "lora"},
      {"sdxl", "controllora", "lora"},
      {"sd15", "legacy", "lora"},
      {"flux", "xlabs", "lora"},
      {"wan14b-i2v", "kohya-fun", "locon"},
      {"hunyuan", "kohya", "loha"},
      {"sd3", "kohya", "lokr"},
  };
  int index = 0;
  for (const Combo& c : combos) {
    GenSpec spec = tiny(c.arch, c.family, c.kind);
    spec.shrink = c.arch == "sd15" || c.arch == "sdxl" ? 16 : 32;
    spec.conv = true;
    spec.tucker = c.tucker;
    spec.peft_metadata = c.peft;
    spec.passthrough = true;
    spec.zero_module = true;
    spec.conv_rank = 2;
    spec.lokr_factor = 4;
    const auto path = temp_file("combo" + std::to_string(index++));
    const GenResult result = write_lora(spec, path, true);
    const auto modules = loader_modules(path);
    ASSERT_EQ(modules.size(), result.modules) << c.arch << " " << c.family << " " << c.kind;
    std::map<std::string, const GenModule*> manifest;
    for (const auto& m : result.manifest) manifest[m.stem] = &m;
    for (const LoaderModule& got : modules) {
      SCOPED_TRACE(c.arch + " " + c.family + " " + c.kind + " " + got.stem);
      ASSERT_EQ(manifest.count(got.stem), 1u);
      const GenModule& want = *manifest.at(got.stem);
      EXPECT_EQ(got.kind, want.kind);
      EXPECT_DOUBLE_EQ(got.scale, want.scale);
      EXPECT_EQ(got.dora, want.dora);
      EXPECT_EQ(static_cast<std::uint64_t>(got.delta.rows()), want.weight_shape[0]);
      std::uint64_t in_flat = 1;
      for (std::size_t i = 1; i < want.weight_shape.size(); ++i) in_flat *= want.weight_shape[i];
      EXPECT_EQ(static_cast<std::uint64_t>(got.delta.cols()), in_flat);
      if (want.kind != "lokr") {
        EXPECT_EQ(got.rank, want.rank);
      }
      EXPECT_TRUE(got.delta.allFinite());
      if (want.zero) {
        EXPECT_EQ(got.delta.norm(), 0.0);
      } else {
        EXPECT_GT(got.delta.norm(), 0.0);
      }
    }
  }
}

}  // namespace
}  // namespace lorakit::testsupport
