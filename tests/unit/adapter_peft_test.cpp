// PEFT / diffusers `lora_adapter_metadata`: scale from r / lora_alpha / patterns / rslora, and the
// rewritten config checked with an independent resolver written after PEFT's get_pattern_key.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "adapter_test_util.hpp"
#include "scratch_folder.hpp"
#include "lorakit/adapter.hpp"

namespace lorakit {
namespace {

using test::build;
using test::expect_error;
using test::find_module;
using test::make_header;
using test::Spec;
using Json = nlohmann::ordered_json;

// A PEFT LoRA pair (diffusers layout) of rank r on an out × in weight.
void add_lora(std::vector<Spec>& specs, const std::string& stem, std::uint64_t r, std::uint64_t out = 64,
              std::uint64_t in = 64) {
  specs.push_back({stem + ".lora_A.weight", {r, in}});
  specs.push_back({stem + ".lora_B.weight", {out, r}});
}

// What PEFT's LoraConfig gives a module: defaults r = 8, lora_alpha = 8; the first pattern key (file
// order) with re.match(rf"(.*\.)?({key})$", name) wins. diffusers strips "COMPONENT." from the keys.
struct Resolved {
  std::uint64_t rank;
  double alpha;
};
Resolved peft_resolve(const std::string& config_text, const std::string& component, const std::string& name) {
  const Json config = Json::parse(config_text);
  const std::string prefix = component.empty() ? "" : component + ".";
  const auto field = [&](const std::string& key) -> const Json* {
    const auto found = config.find(prefix + key);
    return found == config.end() ? nullptr : &*found;
  };
  Resolved resolved{field("r") ? field("r")->get<std::uint64_t>() : 8u,
                    field("lora_alpha") ? field("lora_alpha")->get<double>() : 8.0};
  const auto first_match = [&](const Json* pattern) -> const Json* {
    if (pattern == nullptr) return nullptr;
    for (const auto& [key, value] : pattern->items()) {
      if (std::regex_match(name, std::regex("(.*\\.)?(" + key + ")"))) return &value;
    }
    return nullptr;
  };
  if (const Json* v = first_match(field("rank_pattern"))) resolved.rank = v->get<std::uint64_t>();
  if (const Json* v = first_match(field("alpha_pattern"))) resolved.alpha = v->get<double>();
  return resolved;
}

Metadata peft_metadata(const std::string& json) { return {{"lora_adapter_metadata", json}, {"format", "pt"}}; }

TEST(PeftMetadata, PlainConfigWithBaseModelPrefix) {
  std::vector<Spec> specs;
  add_lora(specs, "base_model.model.transformer_blocks.0.attn.to_k", 16);
  const Header header = make_header(specs, peft_metadata(R"({"r": 16, "lora_alpha": 32, "target_modules": ["to_k"]})"));
  const AdapterModel model = build(header);
  const Module& m = model.modules.at(0);
  EXPECT_EQ(static_cast<int>(m.alpha_source), static_cast<int>(AlphaSource::peft_metadata));
  EXPECT_EQ(m.alpha, 32.0);
  EXPECT_DOUBLE_EQ(m.scale, 2.0);
  EXPECT_FALSE(m.rslora);
  EXPECT_EQ(m.alpha_name, "");
  ASSERT_TRUE(model.peft.has_value());
  EXPECT_EQ(model.peft->metadata_key, "lora_adapter_metadata");
  const PeftConfig::ModuleEntry& entry = model.peft->modules.at(m.stem);
  EXPECT_EQ(entry.component, "");
  EXPECT_EQ(entry.name, "transformer_blocks.0.attn.to_k");
  EXPECT_EQ(entry.rank, 16u);
  EXPECT_EQ(entry.alpha, 32.0);
}

TEST(PeftMetadata, ComponentPrefixedKeysWithPatterns) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.single_transformer_blocks.0.attn.to_k", 8);
  add_lora(specs, "transformer.transformer_blocks.0.attn.to_v", 4);
  add_lora(specs, "transformer.transformer_blocks.0.attn.to_q", 4);
  add_lora(specs, "transformer.transformer_blocks.10.attn.to_k", 4);
  add_lora(specs, "transformer.transformer_blocks.0.attn.to_k", 4);
  add_lora(specs, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", 2);
  add_lora(specs, "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", 2);
  const std::string config = R"({
    "transformer.r": 4, "transformer.lora_alpha": 8,
    "transformer.rank_pattern": {"single_transformer_blocks.0.attn.to_k": 8},
    "transformer.alpha_pattern": {"to_v": 2, "0.attn.to_k": 3, "transformer_blocks\\.[0-9]+\\.attn\\.to_k": 5},
    "text_encoder.r": 2, "text_encoder.lora_alpha": 1, "text_encoder.use_rslora": true
  })";
  const Header header = make_header(specs, peft_metadata(config));
  const AdapterModel model = build(header);
  const auto scale_of = [&](const std::string& stem) { return find_module(model, stem)->scale; };
  // Pattern keys match the name itself or a '.'-preceded suffix, first key in file order.
  EXPECT_DOUBLE_EQ(scale_of("transformer.single_transformer_blocks.0.attn.to_k"), 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(scale_of("transformer.transformer_blocks.0.attn.to_k"), 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("transformer.transformer_blocks.10.attn.to_k"), 5.0 / 4.0);  // regex key
  EXPECT_DOUBLE_EQ(scale_of("transformer.transformer_blocks.0.attn.to_v"), 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("transformer.transformer_blocks.0.attn.to_q"), 8.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("text_encoder.text_model.encoder.layers.0.self_attn.q_proj"), 1.0 / std::sqrt(2.0));
  EXPECT_TRUE(find_module(model, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj")->rslora);
  // No "text_encoder_2." fields and no plain fields: nothing applies.
  const Module* te2 = find_module(model, "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj");
  EXPECT_EQ(static_cast<int>(te2->alpha_source), static_cast<int>(AlphaSource::none));
  EXPECT_EQ(te2->scale, 1.0);
  EXPECT_EQ(model.peft->modules.count(te2->stem), 0u);
  EXPECT_EQ(model.peft->modules.at("transformer.transformer_blocks.0.attn.to_v").name, "transformer_blocks.0.attn.to_v");
  EXPECT_EQ(model.peft->modules.at("transformer.transformer_blocks.0.attn.to_v").component, "transformer");
}

TEST(PeftMetadata, RsloraAndDefaultAlpha) {
  std::vector<Spec> specs;
  add_lora(specs, "unet.up_blocks.1.attentions.0.proj_in", 4);
  const AdapterModel rslora = build(make_header(specs, peft_metadata(R"({"r": 4, "lora_alpha": 16, "use_rslora": true})")));
  EXPECT_DOUBLE_EQ(rslora.modules.at(0).scale, 8.0);  // 16 / sqrt(4)
  // LoraConfig's default lora_alpha is 8.
  const AdapterModel defaulted = build(make_header(specs, peft_metadata(R"({"r": 4})")));
  EXPECT_EQ(defaulted.modules.at(0).alpha, 8.0);
  EXPECT_DOUBLE_EQ(defaulted.modules.at(0).scale, 2.0);
}

TEST(PeftMetadata, AlphaTensorTakesPrecedence) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.a.to_k", 4);
  specs.push_back({"transformer.a.to_k.alpha", {}, DType::F32});
  add_lora(specs, "lora_unet_b", 4);
  const Header header = make_header(specs, peft_metadata(R"({"r": 4, "lora_alpha": 16})"));
  const AdapterModel model = build(header, {{"transformer.a.to_k.alpha", 2.0}});
  const Module* peft = find_module(model, "transformer.a.to_k");
  EXPECT_EQ(static_cast<int>(peft->alpha_source), static_cast<int>(AlphaSource::tensor));
  EXPECT_DOUBLE_EQ(peft->scale, 0.5);
  EXPECT_EQ(peft->alpha_name, "transformer.a.to_k.alpha");  // the input had one
  // The .lora_A / .lora_B of "lora_unet_b" are PEFT-spelled, so the plain config applies to it too.
  EXPECT_DOUBLE_EQ(find_module(model, "lora_unet_b")->scale, 4.0);
  EXPECT_EQ(model.peft->modules.count("transformer.a.to_k"), 0u);
}

TEST(PeftMetadata, KohyaModulesIgnoreTheConfig) {
  const Header header = make_header({{"lora_unet_a.lora_down.weight", {4, 8}}, {"lora_unet_a.lora_up.weight", {8, 4}}},
                                    peft_metadata(R"({"r": 4, "lora_alpha": 16})"));
  const AdapterModel model = build(header);
  EXPECT_EQ(model.modules.at(0).scale, 1.0);
  EXPECT_TRUE(model.peft.has_value());
  EXPECT_TRUE(model.peft->modules.empty());
}

TEST(PeftMetadata, MalformedConfigIsMetadataInvalid) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.a", 4);
  for (const char* bad : {R"({"r": 4,)", R"([1, 2])", R"({"r": "4"})", R"({"transformer.lora_alpha": "x"})",
                          R"({"r": 0})", R"({"rank_pattern": {"a": 2.5}})", R"({"alpha_pattern": [1]})",
                          R"({"use_rslora": 1})", R"({"rank_pattern": {"a(": 2}})"}) {
    const Header header = make_header(specs, peft_metadata(bad));
    expect_error([&] { build(header); }, ErrorCode::metadata_invalid, {"test.safetensors", "lora_adapter_metadata"});
  }
}

// ---- rewrite_peft_config -----------------------------------------------------------------------

// Rebuilds the file as the planner writes it (new ranks, the rewritten config) and checks both the
// independent resolver and build_adapter_model.
void expect_round_trip(const AdapterModel& model, const std::map<std::string, std::uint64_t>& new_rank,
                       const std::map<std::string, double>& new_alpha, const std::string& rewritten) {
  for (const auto& [stem, entry] : model.peft->modules) {
    const std::uint64_t rank = new_rank.count(stem) ? new_rank.at(stem) : entry.rank;
    const double alpha = new_alpha.count(stem) ? new_alpha.at(stem) : entry.alpha;
    const Resolved resolved = peft_resolve(rewritten, entry.component, entry.name);
    EXPECT_EQ(resolved.rank, rank) << stem;
    EXPECT_EQ(resolved.alpha, alpha) << stem;
  }
  std::vector<Spec> specs;
  for (const Module& m : model.modules) {
    add_lora(specs, m.stem, new_rank.count(m.stem) ? new_rank.at(m.stem) : m.rank, m.out_features(), m.in_flat());
  }
  const AdapterModel rebuilt = build(make_header(specs, peft_metadata(rewritten)));
  for (const Module& m : rebuilt.modules) {
    if (!model.peft->modules.count(m.stem)) continue;
    const double alpha = new_alpha.count(m.stem) ? new_alpha.at(m.stem) : model.peft->modules.at(m.stem).alpha;
    EXPECT_EQ(m.alpha, alpha) << m.stem;
  }
}

TEST(PeftRewrite, ComponentPrefixedRoundTrip) {
  std::vector<Spec> specs;
  const std::vector<std::string> stems = {
      "transformer.single_transformer_blocks.0.attn.to_k", "transformer.single_transformer_blocks.0.attn.to_q",
      "transformer.transformer_blocks.0.attn.to_k", "transformer.transformer_blocks.0.ff.net.0.proj",
      "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"};
  for (const std::string& stem : stems) add_lora(specs, stem, 16);
  const std::string config = R"({"text_encoder.lora_alpha": 16, "text_encoder.r": 16, "transformer.lora_alpha": 16,)"
                             R"( "transformer.r": 16, "transformer.rank_pattern": {"to_k": 16},)"
                             R"( "transformer.target_modules": ["to_k", "to_q", "proj"], "transformer.lora_dropout": 0.0})";
  const AdapterModel model = build(make_header(specs, peft_metadata(config)));
  // Scale 1 everywhere: alpha' = k keeps it. The text encoder is left out of the maps (kept).
  const std::map<std::string, std::uint64_t> rank = {{stems[0], 4}, {stems[1], 8}, {stems[2], 4}, {stems[3], 4}};
  const std::map<std::string, double> alpha = {{stems[0], 4.0}, {stems[1], 8.0}, {stems[2], 4.0}, {stems[3], 4.0}};
  const std::string rewritten = rewrite_peft_config(*model.peft, rank, alpha);
  expect_round_trip(model, rank, alpha, rewritten);

  const Json json = Json::parse(rewritten);
  EXPECT_EQ(json.at("transformer.r"), 4);  // the most common new rank
  EXPECT_TRUE(json.at("transformer.lora_alpha").is_number_integer());
  EXPECT_EQ(json.at("transformer.rank_pattern"), Json::parse(R"({"single_transformer_blocks.0.attn.to_q": 8})"));
  EXPECT_EQ(json.at("transformer.target_modules"), Json::parse(R"(["to_k", "to_q", "proj"])"));
  EXPECT_EQ(json.at("transformer.lora_dropout"), 0.0);
  EXPECT_EQ(json.at("text_encoder.r"), 16);
  EXPECT_EQ(json.at("text_encoder.lora_alpha"), 16);
  EXPECT_FALSE(json.contains("r"));  // no plain fields appear in a component-prefixed config
  EXPECT_EQ(rewritten.find('\n'), std::string::npos);  // compact in, compact out
}

TEST(PeftRewrite, SuffixCaptureGetsOwnEntries) {
  // "blocks.0.attn.to_k" also matches "x.blocks.0.attn.to_k" as a dotted suffix; the latter needs its
  // own key, listed first, even though its rank equals the global one.
  std::vector<Spec> specs;
  add_lora(specs, "base_model.model.x.blocks.0.attn.to_k", 8);
  add_lora(specs, "base_model.model.blocks.0.attn.to_k", 8);
  add_lora(specs, "base_model.model.blocks.1.attn.to_k", 8);
  add_lora(specs, "base_model.model.blocks.2.attn.to_k", 8);
  const AdapterModel model = build(make_header(specs, peft_metadata("{\n  \"r\": 8,\n  \"lora_alpha\": 8\n}")));
  const std::map<std::string, std::uint64_t> rank = {{"base_model.model.x.blocks.0.attn.to_k", 2},
                                                     {"base_model.model.blocks.0.attn.to_k", 6},
                                                     {"base_model.model.blocks.1.attn.to_k", 2},
                                                     {"base_model.model.blocks.2.attn.to_k", 2}};
  const std::map<std::string, double> alpha = {{"base_model.model.x.blocks.0.attn.to_k", 2.0},
                                               {"base_model.model.blocks.0.attn.to_k", 6.0},
                                               {"base_model.model.blocks.1.attn.to_k", 2.0},
                                               {"base_model.model.blocks.2.attn.to_k", 2.0}};
  const std::string rewritten = rewrite_peft_config(*model.peft, rank, alpha);
  expect_round_trip(model, rank, alpha, rewritten);
  const Json json = Json::parse(rewritten);
  EXPECT_EQ(json.at("r"), 2);
  EXPECT_EQ(json.at("rank_pattern").size(), 2u);
  EXPECT_EQ(json.at("rank_pattern").begin().key(), "x.blocks.0.attn.to_k");
  EXPECT_NE(rewritten.find('\n'), std::string::npos);  // indented in, indented out
}

TEST(PeftRewrite, RsloraAlphaAndUnchangedModules) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.a.to_k", 16);
  add_lora(specs, "transformer.a.to_q", 16);
  add_lora(specs, "transformer.a.to_v", 16);
  const std::string config =
      R"({"transformer.r": 16, "transformer.lora_alpha": 32, "transformer.use_rslora": true,)"
      R"( "transformer.alpha_pattern": {"to_v": 64}})";
  const AdapterModel model = build(make_header(specs, peft_metadata(config)));
  const double scale_k = find_module(model, "transformer.a.to_k")->scale;  // 32 / 4
  EXPECT_DOUBLE_EQ(scale_k, 8.0);
  // to_k resized to 4 with the same scale: alpha' = scale·sqrt(4); to_q only gets a new rank.
  const std::map<std::string, std::uint64_t> rank = {{"transformer.a.to_k", 4}, {"transformer.a.to_q", 9}};
  const std::map<std::string, double> alpha = {{"transformer.a.to_k", scale_k * 2.0}};
  const std::string rewritten = rewrite_peft_config(*model.peft, rank, alpha);
  expect_round_trip(model, rank, alpha, rewritten);
  const Json json = Json::parse(rewritten);
  EXPECT_EQ(json.at("transformer.use_rslora"), true);
  EXPECT_FALSE(json.at("transformer.alpha_pattern").contains("to_v"));  // replaced by full names
  EXPECT_EQ(json.at("transformer.alpha_pattern").at("a.to_v"), 64);

  std::vector<Spec> resized;
  add_lora(resized, "transformer.a.to_k", 4);
  add_lora(resized, "transformer.a.to_q", 9);
  add_lora(resized, "transformer.a.to_v", 16);
  const AdapterModel rebuilt = build(make_header(resized, peft_metadata(rewritten)));
  EXPECT_DOUBLE_EQ(find_module(rebuilt, "transformer.a.to_k")->scale, 8.0);
  EXPECT_DOUBLE_EQ(find_module(rebuilt, "transformer.a.to_q")->scale, 32.0 / 3.0);
  EXPECT_DOUBLE_EQ(find_module(rebuilt, "transformer.a.to_v")->scale, 16.0);
}

TEST(PeftRewrite, FractionalAlphaAndIgnoredStems) {
  std::vector<Spec> specs;
  add_lora(specs, "unet.a.to_k", 4);
  const AdapterModel model = build(make_header(specs, peft_metadata(R"({"unet.r": 4, "unet.lora_alpha": 4})")));
  const std::string rewritten =
      rewrite_peft_config(*model.peft, {{"unet.a.to_k", 3}, {"lora_unet_other", 2}}, {{"unet.a.to_k", 2.25}});
  const Json json = Json::parse(rewritten);
  EXPECT_EQ(json.at("unet.r"), 3);
  EXPECT_EQ(json.at("unet.lora_alpha"), 2.25);
  EXPECT_EQ(json.at("unet.rank_pattern"), Json::object());
  EXPECT_EQ(json.size(), 4u);
}

TEST(PeftRewrite, NoModulesLeavesTheTextAlone) {
  PeftConfig config{"lora_adapter_metadata", R"({"r": 4,  "lora_alpha": 4})", {}, {}};
  EXPECT_EQ(rewrite_peft_config(config, {{"x", 2}}, {{"x", 2.0}}), config.json);
}

// ---- adapter_config.json beside a raw PEFT adapter (sidecar) -------------------------------------

PeftSidecar sidecar(const std::string& json) { return PeftSidecar{"folder/adapter_config.json", json}; }

AdapterModel build_with(const Header& header, const PeftSidecar& config) {
  return build_adapter_model(header, test::kTestFile, [](const TensorInfo&) { return 0.0; }, &config);
}

TEST(PeftSidecar, ScalesRawAdapterModulesByPeftRules) {
  std::vector<Spec> specs;
  add_lora(specs, "base_model.model.down_blocks.0.attn1.to_k", 8);
  for (const char* name : {"down_blocks.0.attn2.to_q", "down_blocks.0.attn2.to_v", "up_blocks.1.attn1.to_q",
                           "up_blocks.1.attn1.to_v"}) {
    add_lora(specs, std::string("base_model.model.") + name, 4);
  }
  // Each pattern is searched on its own, first key in file order; keys are regexes matching the whole
  // name or a '.'-preceded suffix.
  const std::string config = R"({
    "r": 4, "lora_alpha": 16, "target_modules": ["to_k", "to_q", "to_v"],
    "rank_pattern": {"down_blocks.0.attn1.to_k": 8},
    "alpha_pattern": {"attn2.to_q": 2, "up_blocks\\.[0-9]+\\.attn1\\.to_q": 6, "to_q": 99, "n1.to_v": 77,
                      "attn1.to_v": 3}
  })";
  const AdapterModel model = build_with(make_header(specs, {{"format", "pt"}}), sidecar(config));
  const auto scale_of = [&](const std::string& name) { return find_module(model, "base_model.model." + name)->scale; };
  EXPECT_DOUBLE_EQ(scale_of("down_blocks.0.attn1.to_k"), 16.0 / 8.0);
  EXPECT_DOUBLE_EQ(scale_of("down_blocks.0.attn2.to_q"), 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("down_blocks.0.attn2.to_v"), 16.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("up_blocks.1.attn1.to_q"), 6.0 / 4.0);
  EXPECT_DOUBLE_EQ(scale_of("up_blocks.1.attn1.to_v"), 3.0 / 4.0);  // "n1.to_v" is no '.'-preceded suffix
  EXPECT_FALSE(model.peft.has_value());
  ASSERT_TRUE(model.peft_sidecar.has_value());
  EXPECT_EQ(model.peft_sidecar->sidecar, "folder/adapter_config.json");
  EXPECT_EQ(model.peft_sidecar->json, config);
  const PeftConfig::ModuleEntry& entry = model.peft_sidecar->modules.at("base_model.model.up_blocks.1.attn1.to_q");
  EXPECT_EQ(entry.component, "");
  EXPECT_EQ(entry.name, "up_blocks.1.attn1.to_q");
  EXPECT_EQ(entry.alpha, 6.0);
  EXPECT_EQ(static_cast<int>(model.modules.at(0).alpha_source), static_cast<int>(AlphaSource::peft_metadata));
}

TEST(PeftSidecar, HoldsOneLoraConfigWithPeftDefaults) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.blocks.0.to_k", 8);  // not a component prefix in a sidecar
  const AdapterModel defaults = build_with(make_header(specs), sidecar(R"({"transformer.r": 2})"));
  EXPECT_DOUBLE_EQ(defaults.modules.at(0).scale, 1.0);  // LoraConfig's r = 8, lora_alpha = 8
  EXPECT_EQ(defaults.peft_sidecar->modules.at("transformer.blocks.0.to_k").name, "transformer.blocks.0.to_k");
  const AdapterModel rslora = build_with(make_header(specs), sidecar(R"({"r": 8, "lora_alpha": 32, "use_rslora": true})"));
  EXPECT_DOUBLE_EQ(rslora.modules.at(0).scale, 32.0 / std::sqrt(8.0));
  EXPECT_TRUE(rslora.modules.at(0).rslora);
}

TEST(PeftSidecar, RefusesWhatPeftCouldNotLoad) {
  std::vector<Spec> specs;
  add_lora(specs, "base_model.model.a.to_k", 4);
  const Header header = make_header(specs);
  // PEFT builds the layer at rank 8, then the rank-4 tensors do not fit it.
  expect_error([&] { build_with(header, sidecar(R"({"r": 8})")); }, ErrorCode::metadata_invalid,
               {"folder/adapter_config.json", "base_model.model.a.to_k.lora_A.weight", "rank 8", "rank 4"});
  expect_error([&] { build_with(header, sidecar(R"({"r": 4, "peft_type": "LOHA"})")); }, ErrorCode::metadata_invalid,
               {"folder/adapter_config.json", "peft_type", "LOHA"});
  for (const char* bad : {R"({"r": 4,)", R"({"r": "4"})", R"({"rank_pattern": {"a(": 4}})"}) {
    try {
      build_with(header, sidecar(bad));
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::metadata_invalid) << e.what();
      EXPECT_TRUE(std::string_view(e.what()).starts_with("folder/adapter_config.json: ")) << e.what();
      EXPECT_EQ(std::string_view(e.what()).find("lora_adapter_metadata"), std::string_view::npos) << e.what();
    }
  }
}

TEST(PeftSidecar, MustAgreeWithTheFilesMetadata) {
  std::vector<Spec> specs;
  add_lora(specs, "base_model.model.a.to_k", 4);
  const Header header = make_header(specs, peft_metadata(R"({"r": 4, "lora_alpha": 8})"));
  const AdapterModel agreeing = build_with(header, sidecar(R"({"r": 4, "lora_alpha": 8})"));
  EXPECT_DOUBLE_EQ(agreeing.modules.at(0).scale, 2.0);
  EXPECT_EQ(agreeing.peft->modules.size(), 1u);
  EXPECT_EQ(agreeing.peft_sidecar->modules.size(), 1u);
  expect_error([&] { build_with(header, sidecar(R"({"r": 4, "lora_alpha": 16})")); }, ErrorCode::metadata_invalid,
               {"folder/adapter_config.json", "disagree"});
}

TEST(PeftSidecar, MetadataRankMustMatchTheTensorsToo) {
  std::vector<Spec> specs;
  add_lora(specs, "transformer.a.to_k", 4);
  expect_error([&] { build(make_header(specs, peft_metadata(R"({"transformer.r": 16})"))); },
               ErrorCode::metadata_invalid, {"test.safetensors", "lora_adapter_metadata", "rank 16", "rank 4"});
}

// PEFT's save_pretrained writes the whole LoraConfig: lorakit rewrites r / lora_alpha / the patterns
// and leaves every other field as it was.
TEST(PeftSidecar, RewriteResolvesNewRanksAndKeepsTheRest) {
  const std::vector<std::string> names = {"down_blocks.0.attn1.to_k", "down_blocks.0.attn1.to_q",
                                          "up_blocks.0.attn1.to_k", "x.up_blocks.0.attn1.to_k"};
  std::vector<Spec> specs;
  for (const std::string& name : names) add_lora(specs, "base_model.model." + name, 8);
  const std::string config = R"({
  "alpha_pattern": {"to_q": 4},
  "auto_mapping": {"base_model_class": "UNet2DConditionModel"},
  "bias": "none",
  "exclude_modules": null,
  "lora_alpha": 16,
  "lora_dropout": 0.1,
  "peft_type": "LORA",
  "r": 8,
  "rank_pattern": {},
  "target_modules": ["to_k", "to_q"],
  "use_rslora": true
})";
  const AdapterModel model = build_with(make_header(specs), sidecar(config));
  std::map<std::string, std::uint64_t> rank;
  std::map<std::string, double> alpha;
  const std::vector<std::uint64_t> new_ranks = {2, 8, 3, 2};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string stem = "base_model.model." + names[i];
    rank[stem] = new_ranks[i];
    alpha[stem] = find_module(model, stem)->scale * std::sqrt(static_cast<double>(new_ranks[i]));  // rsLoRA
  }
  const std::string rewritten = rewrite_peft_config(*model.peft_sidecar, rank, alpha);
  for (std::size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    const Resolved resolved = peft_resolve(rewritten, "", names[i]);
    const std::string stem = "base_model.model." + names[i];
    EXPECT_EQ(resolved.rank, rank.at(stem));
    EXPECT_EQ(resolved.alpha, alpha.at(stem));
    EXPECT_DOUBLE_EQ(resolved.alpha / std::sqrt(static_cast<double>(resolved.rank)), find_module(model, stem)->scale);
  }
  Json before = Json::parse(config);
  Json after = Json::parse(rewritten);
  for (const char* field : {"r", "lora_alpha", "rank_pattern", "alpha_pattern"}) {
    before.erase(field);
    after.erase(field);
  }
  EXPECT_EQ(after, before);  // target_modules, use_rslora, auto_mapping, ... untouched, in their order
  EXPECT_NE(rewritten.find("\n  \"bias\""), std::string::npos);  // PEFT's indent of 2 kept
}

TEST(PeftFolder, TheSidecarBelongsToAdapterModelSafetensors) {
  testutil::ScratchFolder dir;
  std::ofstream(dir / "adapter_model.safetensors") << "weights";
  std::ofstream(dir / "pytorch_lora_weights.safetensors") << "weights";
  std::ofstream(dir / "adapter_config.json") << R"({"r": 4})";
  std::ofstream(dir / "other.json") << R"({"r": 2})";
  const std::optional<PeftSidecar> beside = find_peft_sidecar(dir / "adapter_model.safetensors", std::nullopt);
  ASSERT_TRUE(beside.has_value());
  EXPECT_EQ(beside->path, dir / "adapter_config.json");
  EXPECT_EQ(beside->json, R"({"r": 4})");
  EXPECT_FALSE(find_peft_sidecar(dir / "pytorch_lora_weights.safetensors", std::nullopt).has_value());
  EXPECT_EQ(find_peft_sidecar(dir / "pytorch_lora_weights.safetensors", dir / "other.json")->json, R"({"r": 2})");
  EXPECT_EQ(find_peft_sidecar(dir / "adapter_model.safetensors", dir / "other.json")->json, R"({"r": 2})");
  expect_error([&] { find_peft_sidecar(dir / "adapter_model.safetensors", dir / "missing.json"); }, ErrorCode::io_open,
               {"missing.json"});
  EXPECT_EQ(adapter_weights_path(dir.path()), dir / "adapter_model.safetensors");
  EXPECT_EQ(adapter_weights_path(dir / "other.json"), dir / "other.json");
  std::filesystem::create_directory(dir / "empty");
  expect_error([&] { adapter_weights_path(dir / "empty"); }, ErrorCode::io_open, {"empty", "adapter_model.safetensors"});
}

// ---- formats refused by name --------------------------------------------------------------------

TEST(UnsupportedFormat, CloneofsimoKeysAreRefusedByName) {
  const Header header = make_header({{"text_encoder:0:down", {4, 768}}, {"text_encoder:0:up", {768, 4}},
                                     {"unet:12:down", {4, 320}}, {"unet:12:up", {320, 4}}},
                                    {{"unet:12:rank", "4"}, {"unet", R"(["CrossAttention"])"}});
  expect_error([&] { build(header); }, ErrorCode::adapter_format_unsupported,
               {"test.safetensors", "cloneofsimo/lora", "4 tensors", "text_encoder:0:down", "metadata"});
  // Colons alone do not make the format.
  const Header other = make_header({{"a:b:up", {4, 8}}, {"x:1:upper", {4}}, {"m.lora_A.weight", {2, 8}},
                                    {"m.lora_B.weight", {8, 2}}});
  EXPECT_EQ(build(other).modules.size(), 1u);
}

}  // namespace
}  // namespace lorakit
