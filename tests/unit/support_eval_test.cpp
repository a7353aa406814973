// The loader evaluator on tiny hand-built files: every expected ΔW below is computed by hand.
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loader_eval.hpp"
#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "scratch_folder.hpp"

namespace lorakit::testsupport {
namespace {

using Eigen::MatrixXd;

class EvalTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::vector<RawTensor>& tensors, const Metadata& metadata = {}) {
    const auto path = scratch_ / ("eval_" + std::to_string(counter_++) + ".safetensors");
    write_tensors(tensors, metadata, path, true, true);
    return path;
  }

  static RawTensor t(const std::string& name, std::vector<std::uint64_t> shape, std::vector<double> values,
                     DType dtype = DType::F32) {
    return RawTensor{name, dtype, std::move(shape), std::move(values), {}};
  }

  static const LoaderModule& only(const std::vector<LoaderModule>& modules) {
    EXPECT_EQ(modules.size(), 1u);
    return modules.at(0);
  }

  static MatrixXd m(int rows, int cols, std::vector<double> v) {
    MatrixXd out(rows, cols);
    for (int i = 0; i < rows; ++i) {
      for (int j = 0; j < cols; ++j) out(i, j) = v[static_cast<std::size_t>(i * cols + j)];
    }
    return out;
  }

  static void expect_matrix(const MatrixXd& got, const MatrixXd& want) {
    ASSERT_EQ(got.rows(), want.rows());
    ASSERT_EQ(got.cols(), want.cols());
    EXPECT_LT((got - want).norm(), 1e-12) << "got\n" << got << "\nwant\n" << want;
  }

  testutil::ScratchFolder scratch_;
  int counter_ = 0;
};

TEST_F(EvalTest, KohyaLinearLoraWithAlpha) {
  const auto path = write({t("lora_unet_x.lora_down.weight", {2, 3}, {1, 0, 2, 0, 1, 1}, DType::F16),
                           t("lora_unet_x.lora_up.weight", {2, 2}, {1, 1, 0, 2}, DType::F16),
                           scalar_tensor("lora_unet_x.alpha", DType::F16, 1.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.stem, "lora_unet_x");
  EXPECT_EQ(mod.kind, "lora");
  EXPECT_EQ(mod.rank, 2u);
  EXPECT_DOUBLE_EQ(mod.scale, 0.5);
  EXPECT_EQ(mod.scale_source, "alpha");
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{2, 3}));
  expect_matrix(mod.delta, m(2, 3, {0.5, 0.5, 1.5, 0, 1, 1}));
}

TEST_F(EvalTest, ConvLoraWithoutAlphaHasScaleOne) {
  const auto path = write({t("lora_unet_c.lora_down.weight", {1, 2, 1, 2}, {1, 2, 3, 4}),
                           t("lora_unet_c.lora_up.weight", {2, 1, 1, 1}, {1, -1})});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.scale_source, "none");
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{2, 2, 1, 2}));
  expect_matrix(mod.delta, m(2, 4, {1, 2, 3, 4, -1, -2, -3, -4}));
}

TEST_F(EvalTest, TuckerLocon) {
  // mid[a][b][0][x]: a=0: b0 [1,0], b1 [0,1]; a=1: b0 [1,1], b1 [0,0].
  const auto path = write({t("lora_unet_k.lora_down.weight", {2, 1, 1, 1}, {1, 2}),
                           t("lora_unet_k.lora_mid.weight", {2, 2, 1, 2}, {1, 0, 0, 1, 1, 1, 0, 0}),
                           t("lora_unet_k.lora_up.weight", {1, 2, 1, 1}, {1, 1}),
                           scalar_tensor("lora_unet_k.alpha", DType::F32, 2.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.kind, "lora_tucker");
  EXPECT_DOUBLE_EQ(mod.scale, 1.0);
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{1, 1, 1, 2}));
  expect_matrix(mod.delta, m(1, 2, {2, 3}));
}

TEST_F(EvalTest, TuckerLoconWithSeveralInputChannels) {
  // ΔW[o, i, 0, x] = up[o]·mid[x]·down[i]: row o flattened over (i, x).
  const auto path = write({t("lora_unet_k.lora_down.weight", {1, 2, 1, 1}, {1, 2}),
                           t("lora_unet_k.lora_mid.weight", {1, 1, 1, 2}, {3, 5}),
                           t("lora_unet_k.lora_up.weight", {2, 1, 1, 1}, {1, -1})});
  expect_matrix(only(loader_modules(path)).delta, m(2, 4, {3, 5, 6, 10, -3, -5, -6, -10}));
}

TEST_F(EvalTest, LoHa) {
  const auto path =
      write({t("lora_unet_h.hada_w1_a", {2, 1}, {1, 2}), t("lora_unet_h.hada_w1_b", {1, 2}, {3, 4}),
             t("lora_unet_h.hada_w2_a", {2, 1}, {1, -1}), t("lora_unet_h.hada_w2_b", {1, 2}, {1, 2}),
             scalar_tensor("lora_unet_h.alpha", DType::BF16, 2.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.kind, "loha");
  EXPECT_EQ(mod.rank, 1u);
  EXPECT_DOUBLE_EQ(mod.scale, 2.0);
  expect_matrix(mod.delta, m(2, 2, {6, 16, -12, -32}));
}

TEST_F(EvalTest, LoHaTucker) {
  // term1[p, c, x] = t1[x]·w1_b[c]·w1_a[p] = [[3, 6, 1, 2], [6, 12, 2, 4]];
  // term2 = [[2, 2, 1, 1], [-2, -2, -1, -1]].
  const auto path =
      write({t("lycoris_h.hada_t1", {1, 1, 1, 2}, {1, 2}), t("lycoris_h.hada_w1_a", {1, 2}, {1, 2}),
             t("lycoris_h.hada_w1_b", {1, 2}, {3, 1}), t("lycoris_h.hada_t2", {1, 1, 1, 2}, {1, 1}),
             t("lycoris_h.hada_w2_a", {1, 2}, {1, -1}), t("lycoris_h.hada_w2_b", {1, 2}, {2, 1}),
             scalar_tensor("lycoris_h.alpha", DType::F32, 1.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.kind, "loha_tucker");
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{2, 2, 1, 2}));
  expect_matrix(mod.delta, m(2, 4, {6, 12, 1, 2, -12, -24, -2, -4}));
}

TEST_F(EvalTest, LoKrBothFullIgnoresAlpha) {
  const auto path = write({t("lora_unet_k.lokr_w1", {2, 1}, {1, 2}), t("lora_unet_k.lokr_w2", {1, 2}, {3, 4}),
                           scalar_tensor("lora_unet_k.alpha", DType::F32, 8.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.kind, "lokr");
  EXPECT_DOUBLE_EQ(mod.scale, 1.0);
  expect_matrix(mod.delta, m(2, 2, {3, 4, 6, 8}));
}

TEST_F(EvalTest, LoKrDecomposedW2UsesAlphaOverW2Rank) {
  const auto path =
      write({t("lora_unet_k.lokr_w1", {1, 2}, {1, -1}), t("lora_unet_k.lokr_w2_a", {2, 1}, {1, 2}),
             t("lora_unet_k.lokr_w2_b", {1, 1}, {3}), scalar_tensor("lora_unet_k.alpha", DType::F32, 2.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.rank, 1u);
  EXPECT_DOUBLE_EQ(mod.scale, 2.0);
  expect_matrix(mod.delta, m(2, 2, {6, -6, 12, -12}));
}

TEST_F(EvalTest, LoKrDecomposedW1AndW2) {
  // w1 = [[1],[2]]·[[1, 1]] = [[1, 1], [2, 2]]; w2 = [[1]]·[[2]] = [[2]]; scale 3/1.
  const auto path = write({t("k.lokr_w1_a", {2, 1}, {1, 2}), t("k.lokr_w1_b", {1, 2}, {1, 1}),
                           t("k.lokr_w2_a", {1, 1}, {1}), t("k.lokr_w2_b", {1, 1}, {2}),
                           scalar_tensor("k.alpha", DType::F32, 3.0)});
  const LoaderModule mod = only(loader_modules(path));
  expect_matrix(mod.delta, m(2, 2, {6, 6, 12, 12}));
}

TEST_F(EvalTest, LoKrTuckerW2) {
  // w2[p, q, 0, x] = t2[x]·w2_a[p]·w2_b[q] = [[1, 3, 10, 30], [2, 6, 20, 60]]; kron with [[2]].
  const auto path =
      write({t("lora_unet_k.lokr_w1", {1, 1}, {2}), t("lora_unet_k.lokr_t2", {1, 1, 1, 2}, {1, 3}),
             t("lora_unet_k.lokr_w2_a", {1, 2}, {1, 2}), t("lora_unet_k.lokr_w2_b", {1, 2}, {1, 10}),
             scalar_tensor("lora_unet_k.alpha", DType::F32, 1.0)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{2, 2, 1, 2}));
  expect_matrix(mod.delta, m(2, 4, {2, 6, 20, 60, 4, 12, 40, 120}));
}

TEST_F(EvalTest, ConvLoKrKroneckerOfFlattenedW2) {
  // w1 = [[1, -1]] (1×2); w2 (1, 1, 1, 2) = [[5, 7]] flattened: ΔW (1, 2, 1, 2) = [[5, 7, -5, -7]].
  const auto path = write({t("k.lokr_w1", {1, 2}, {1, -1}), t("k.lokr_w2", {1, 1, 1, 2}, {5, 7})});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.weight_shape, (std::vector<std::uint64_t>{1, 2, 1, 2}));
  expect_matrix(mod.delta, m(1, 4, {5, 7, -5, -7}));
}

TEST_F(EvalTest, ScaleTensorOverridesAlpha) {
  const auto path =
      write({t("x.lora_down.weight", {1, 1}, {2}), t("x.lora_up.weight", {1, 1}, {3}),
             scalar_tensor("x.alpha", DType::F32, 1.0), scalar_tensor("x.scale", DType::F32, 0.25)});
  const LoaderModule mod = only(loader_modules(path));
  EXPECT_EQ(mod.scale_source, "scale");
  expect_matrix(mod.delta, m(1, 1, {1.5}));
}

TEST_F(EvalTest, ZeroAlphaFollowsTheChosenLoader) {
  const auto path = write({t("x.lora_down.weight", {1, 1}, {2}), t("x.lora_up.weight", {1, 1}, {3}),
                           scalar_tensor("x.alpha", DType::F32, 0.0)});
  expect_matrix(only(loader_modules(path)).delta, m(1, 1, {0}));
  EvalOptions kohya;
  kohya.zero_alpha_is_rank = true;
  expect_matrix(only(loader_modules(path, kohya)).delta, m(1, 1, {6}));
}

TEST_F(EvalTest, PeftMetadataPlainPrefixedPatternsAndRslora) {
  const std::vector<RawTensor> tensors = {t("transformer.blocks.0.attn.to_q.lora_A.weight", {2, 1}, {1, 1}),
                                          t("transformer.blocks.0.attn.to_q.lora_B.weight", {1, 2}, {1, 2})};
  // up·down = [[3]].
  const auto plain = write(tensors, {{"lora_adapter_metadata", R"({"r": 2, "lora_alpha": 4})"}});
  EXPECT_EQ(only(loader_modules(plain)).scale_source, "peft_metadata");
  expect_matrix(only(loader_modules(plain)).delta, m(1, 1, {6}));

  const auto patterned = write(tensors, {{"lora_adapter_metadata",
                                          R"({"transformer.r": 4, "transformer.lora_alpha": 4,
                     "transformer.rank_pattern": {"blocks.0.attn.to_q": 2},
                     "transformer.alpha_pattern": {"blocks.0.attn.to_q": 1}})"}});
  expect_matrix(only(loader_modules(patterned)).delta, m(1, 1, {1.5}));

  const auto rslora =
      write(tensors, {{"lora_adapter_metadata", R"({"r": 2, "lora_alpha": 2, "use_rslora": true})"}});
  expect_matrix(only(loader_modules(rslora)).delta, m(1, 1, {3 * std::sqrt(2.0)}));

  const auto absent = write(tensors, {{"format", "pt"}});
  expect_matrix(only(loader_modules(absent)).delta, m(1, 1, {3}));
}

TEST_F(EvalTest, PeftMetadataRankDisagreeingWithFactorsFails) {
  const auto path =
      write({t("unet.a.lora_A.weight", {2, 1}, {1, 1}), t("unet.a.lora_B.weight", {1, 2}, {1, 2})},
            {{"lora_adapter_metadata", R"({"r": 8, "lora_alpha": 8})"}});
  try {
    loader_modules(path);
    FAIL() << "expected adapter_shape_mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::adapter_shape_mismatch);
    EXPECT_NE(std::string(e.what()).find("unet.a"), std::string::npos);
  }
}

TEST_F(EvalTest, StemsOfEveryNamingAndPassThroughIgnored) {
  const auto one = [&](const std::string& down, const std::string& up) {
    return std::vector<RawTensor>{t(down, {1, 1}, {1}), t(up, {1, 1}, {2})};
  };
  std::vector<RawTensor> all;
  for (const auto& pair :
       {one("unet.a.attn1.processor.to_q_lora.down.weight", "unet.a.attn1.processor.to_q_lora.up.weight"),
        one("unet.b.lora.down.weight", "unet.b.lora.up.weight"),
        one("text_encoder.c.lora_linear_layer.down.weight", "text_encoder.c.lora_linear_layer.up.weight"),
        one("base_model.model.d.lora_A.default.weight", "base_model.model.d.lora_B.default.weight"),
        one("diffusion_model.e.lora_A.weight", "diffusion_model.e.lora_B.weight"),
        one("input_blocks.1.0.f.down", "input_blocks.1.0.f.up"),
        one("double_blocks.0.processor.qkv_lora1.down.weight",
            "double_blocks.0.processor.qkv_lora1.up.weight")}) {
    all.insert(all.end(), pair.begin(), pair.end());
  }
  all.push_back(t("unet.b.diff_b", {1}, {5}));
  all.push_back(t("bundle_emb.tok.string_to_param.*", {1, 2}, {1, 2}));
  all.push_back(scalar_tensor("orphan.alpha", DType::F32, 4));
  all.push_back(t("x.lora_down.weight", {1, 1}, {1}));
  all.push_back(t("x.lora_up.weight", {1, 1}, {1}));
  all.push_back(t("x.dora_scale", {1, 1}, {1}));
  const auto deltas = loader_deltas(write(all));
  std::vector<std::string> stems;
  for (const auto& [stem, delta] : deltas) stems.push_back(stem);
  EXPECT_EQ(stems,
            (std::vector<std::string>{"base_model.model.d", "diffusion_model.e",
                                      "double_blocks.0.processor.qkv_lora1", "input_blocks.1.0.f",
                                      "text_encoder.c", "unet.a.attn1.processor.to_q_lora", "unet.b", "x"}));
  EXPECT_DOUBLE_EQ(deltas.at("unet.b")(0, 0), 2.0);
  const auto modules = loader_modules(write(all), {}, [](const std::string& s) { return s == "x"; });
  EXPECT_TRUE(only(modules).dora);
}

TEST_F(EvalTest, IncompleteAndMismatchedModulesAreErrors) {
  try {
    loader_modules(write({t("x.lora_down.weight", {1, 2}, {1, 2})}));
    FAIL() << "expected adapter_incomplete";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::adapter_incomplete);
  }
  try {
    loader_modules(write({t("x.lora_down.weight", {2, 3}, {1, 2, 3, 4, 5, 6}),
                          t("x.lora_up.weight", {2, 3}, {1, 2, 3, 4, 5, 6})}));
    FAIL() << "expected adapter_shape_mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::adapter_shape_mismatch);
    EXPECT_NE(std::string(e.what()).find("x.lora_up.weight"), std::string::npos);
  }
}

// A raw PEFT adapter read with its adapter_config.json, as PeftModel.from_pretrained reads it.
TEST_F(EvalTest, PeftSidecarGivesRankAndScale) {
  const auto config = [&](const std::string& json) {
    const std::filesystem::path path = scratch_ / ("config_" + std::to_string(counter_++) + ".json");
    std::ofstream(path) << json;
    EvalOptions options;
    options.peft_config = path;
    return options;
  };
  // a.to_k: rank 2 from rank_pattern (suffix key), alpha 3 from alpha_pattern; b.to_k: r 1, lora_alpha 4.
  const auto path = write({t("base_model.model.a.to_k.lora_A.weight", {2, 2}, {1, 0, 0, 1}),
                           t("base_model.model.a.to_k.lora_B.weight", {1, 2}, {1, 1}),
                           t("base_model.model.b.to_k.lora_A.weight", {1, 2}, {1, 2}),
                           t("base_model.model.b.to_k.lora_B.weight", {1, 1}, {2}),
                           scalar_tensor("base_model.model.b.to_k.alpha", DType::F32, 100.0)});
  const std::string fields = R"("r": 1, "lora_alpha": 4, "rank_pattern": {"a.to_k": 2}, "alpha_pattern": {"a.to_k": 3})";
  const auto modules = loader_modules(path, config("{" + fields + R"(, "target_modules": ["to_k"]})"));
  ASSERT_EQ(modules.size(), 2u);
  EXPECT_EQ(modules[0].scale_source, "peft_config");
  expect_matrix(modules[0].delta, m(1, 2, {1.5, 1.5}));  // 3 / 2 · [1 1]
  expect_matrix(modules[1].delta, m(1, 2, {8, 16}));     // 4 / 1 · 2 · [1 2]; PEFT ignores the alpha tensor
  const auto rslora = loader_modules(path, config("{" + fields + R"(, "use_rslora": true})"));
  expect_matrix(rslora[0].delta, m(1, 2, {3 / std::sqrt(2.0), 3 / std::sqrt(2.0)}));

  const auto expect_refused = [&](const std::string& json, ErrorCode code, const std::string& fragment) {
    try {
      loader_modules(path, config(json));
      ADD_FAILURE() << json;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  // PEFT would build b.to_k at rank 2, or a.to_k at rank 1: the tensors do not fit.
  expect_refused(R"({"r": 2, "rank_pattern": {"a.to_k": 2}})", ErrorCode::adapter_shape_mismatch, "b.to_k");
  expect_refused(R"({"r": 1})", ErrorCode::adapter_shape_mismatch, "a.to_k");
  // Not targeted (a '.'-preceded suffix is needed; exclude_modules wins): PEFT would ignore the tensors.
  expect_refused("{" + fields + R"(, "target_modules": ["o_k"]})", ErrorCode::adapter_incomplete, "target_modules");
  expect_refused("{" + fields + R"(, "target_modules": "b\\..*"})", ErrorCode::adapter_incomplete, "a.to_k");
  expect_refused("{" + fields + R"(, "exclude_modules": ["b.to_k"]})", ErrorCode::adapter_incomplete, "b.to_k");
  // Only base_model.model. keys are loaded.
  const auto other = write({t("unet.a.lora_A.weight", {1, 2}, {1, 2}), t("unet.a.lora_B.weight", {1, 1}, {2})});
  try {
    loader_modules(other, config(R"({"r": 1})"));
    ADD_FAILURE() << "expected adapter_incomplete";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::adapter_incomplete);
  }
}

TEST(RelativeError, DefinitionAndEdgeCases) {
  MatrixXd a(1, 2);
  a << 3, 4;
  MatrixXd b(1, 2);
  b << 3, 3;
  EXPECT_DOUBLE_EQ(relative_error(a, b), 0.2);
  EXPECT_EQ(relative_error(MatrixXd::Zero(2, 2), MatrixXd::Zero(2, 2)), 0.0);
  EXPECT_TRUE(std::isinf(relative_error(MatrixXd::Zero(1, 2), b)));
  EXPECT_TRUE(std::isinf(relative_error(a, MatrixXd::Zero(2, 1))));
  const Eigen::VectorXd s = singular_values(a);
  ASSERT_EQ(s.size(), 1);
  EXPECT_NEAR(s(0), 5.0, 1e-12);
}

}  // namespace
}  // namespace lorakit::testsupport
