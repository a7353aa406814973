// End-to-end: raw PEFT adapters (adapter_model.safetensors + adapter_config.json, as save_pretrained
// writes them) resized and re-read by the independent loader evaluator the way PEFT's from_pretrained
// reads them: layers built from the rewritten config must fit the resized tensors, and every module's
// scaled ΔW must move by exactly the retention the report gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapter_test_util.hpp"
#include "batch_test_util.hpp"
#include "e2e_checks.hpp"
#include "lora_gen.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using batch::testing::files_below;
using batch::testing::read_text;
using testsupport::EvalOptions;
using testsupport::GenSpec;
using testsupport::PeftMetadata;
using testutil::ScratchFolder;
using Json = nlohmann::ordered_json;

constexpr double kParam = 0.9;

// An SD1.5 UNet adapter whose modules cycle through four ranks and four alphas, so that the config
// needs rank_pattern and alpha_pattern entries before and after the resize.
GenSpec peft_adapter(bool rslora) {
  GenSpec spec;
  spec.arch = "sd15";
  spec.family = "peft";
  spec.peft_metadata = PeftMetadata::sidecar;
  spec.rslora = rslora;
  spec.rank = 8;
  spec.rank_cycle = {8, 4, 12, 6};
  spec.alpha_cycle = {16, 4, 8, 3};
  spec.shrink = 8;
  spec.seed = 23;
  spec.dtype = DType::F32;  // so that the retention check is not blurred by fp16 rounding
  return spec;
}

ResizeOptions sv_fro() {
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = kParam;
  return options;
}

EvalOptions peft_reading(const fs::path& config) {
  EvalOptions options;
  options.peft_config = config;
  return options;
}

bool has_note(const ResizeReport& report, const std::string& fragment) {
  return std::any_of(report.notes.begin(), report.notes.end(),
                     [&](const std::string& note) { return note.find(fragment) != std::string::npos; });
}

// The config without the four fields a resize rewrites.
Json other_fields(const fs::path& config) {
  Json json = Json::parse(read_text(config));
  for (const char* field : {"r", "lora_alpha", "rank_pattern", "alpha_pattern"}) json.erase(field);
  return json;
}

class PeftAdapter : public ::testing::Test {
 protected:
  // in/adapter_model.safetensors + in/adapter_config.json
  fs::path generate(const GenSpec& spec) {
    fs::create_directories(dir_ / "in");
    manifest_ = testsupport::write_lora(spec, dir_ / "in" / "adapter_model.safetensors", true).manifest;
    return dir_ / "in";
  }

  ScratchFolder dir_;
  std::vector<testsupport::GenModule> manifest_;
};

class PeftFolder : public PeftAdapter, public ::testing::WithParamInterface<bool> {};

TEST_P(PeftFolder, ResizedAdapterLoadsAsPeftBuildsItWithTheSameScaledDelta) {
  const fs::path in = generate(peft_adapter(GetParam()));
  const ResizeReport report = resize_file(in, dir_ / "out", sv_fro());
  const fs::path out = dir_ / "out";
  EXPECT_EQ(report.output, (out / "adapter_model.safetensors").string());
  EXPECT_EQ(files_below(out), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));

  // The evaluator reads each file with its own config; a tensor that does not fit the layer PEFT builds
  // from the rewritten config throws there.
  const std::size_t resized =
      e2e::expect_deltas_match_report(in / "adapter_model.safetensors", out / "adapter_model.safetensors", report,
                                       kParam, 1e-5, peft_reading(in / "adapter_config.json"),
                                       peft_reading(out / "adapter_config.json"));
  EXPECT_GT(resized, report.modules.size() / 2);

  // The scales the evaluator read are the generator's, and they differ between modules.
  const auto before =
      testsupport::loader_modules(in / "adapter_model.safetensors", peft_reading(in / "adapter_config.json"));
  ASSERT_EQ(before.size(), manifest_.size());
  std::set<double> scales;
  for (const testsupport::GenModule& module : manifest_) {
    const auto found = std::find_if(before.begin(), before.end(), [&](const auto& m) { return m.stem == module.stem; });
    ASSERT_NE(found, before.end()) << module.stem;
    EXPECT_EQ(found->scale_source, "peft_config");
    EXPECT_NEAR(found->scale, module.scale, 1e-15 * module.scale) << module.stem;
    scales.insert(module.scale);
  }
  EXPECT_GE(scales.size(), 4u);

  const Json rewritten = Json::parse(read_text(out / "adapter_config.json"));
  EXPECT_FALSE(rewritten.at("rank_pattern").empty());
  EXPECT_FALSE(rewritten.at("alpha_pattern").empty());
  EXPECT_EQ(rewritten.at("use_rslora"), GetParam());
  EXPECT_EQ(other_fields(out / "adapter_config.json"), other_fields(in / "adapter_config.json"));
  EXPECT_TRUE(has_note(report, (in / "adapter_config.json").string()));
  EXPECT_TRUE(has_note(report, "rewritten for the new ranks to " + (out / "adapter_config.json").string()));
}

INSTANTIATE_TEST_SUITE_P(Rslora, PeftFolder, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) { return param.param ? "rslora" : "plain"; });

TEST_F(PeftAdapter, WithoutAConfigTheScaleIsAssumedOne) {
  const fs::path in = generate(peft_adapter(false));
  fs::remove(in / "adapter_config.json");
  const ResizeReport report = resize_file(in / "adapter_model.safetensors", dir_ / "out.safetensors", sv_fro());
  EXPECT_TRUE(has_note(report, "assumed to be 1")) << ::testing::PrintToString(report.notes);
  EXPECT_FALSE(fs::exists(dir_ / "adapter_config.json"));
  for (const ModuleReport& module : report.modules) EXPECT_FALSE(module.new_alpha.has_value()) << module.stem;
}

TEST_F(PeftAdapter, AnotherNameNeedsPeftConfigAndIsToldToRename) {
  const fs::path in = generate(peft_adapter(false));
  fs::rename(in / "adapter_model.safetensors", in / "weights.safetensors");
  fs::create_directory(dir_ / "out");
  // adapter_config.json belongs to adapter_model.safetensors: a file of another name is not scaled by it.
  const ResizeReport unscaled = plan_file(in / "weights.safetensors", sv_fro());
  EXPECT_TRUE(has_note(unscaled, "assumed to be 1"));

  ResizeOptions options = sv_fro();
  options.peft_config = in / "adapter_config.json";
  const ResizeReport report = resize_file(in / "weights.safetensors", dir_ / "out" / "small.safetensors", options);
  EXPECT_TRUE(has_note(report, "rename the output"));
  e2e::expect_deltas_match_report(in / "weights.safetensors", dir_ / "out" / "small.safetensors", report, kParam, 1e-5,
                                  peft_reading(in / "adapter_config.json"),
                                  peft_reading(dir_ / "out" / "adapter_config.json"));
}

TEST_F(PeftAdapter, RefusesBeforeWritingAnything) {
  const fs::path in = generate(peft_adapter(false));
  const std::string input_config = read_text(in / "adapter_config.json");

  // The rewrite would replace the input's own config, with or without --force.
  for (const bool force : {false, true}) {
    ResizeOptions options = sv_fro();
    options.force = force;
    test::expect_error([&] { resize_file(in / "adapter_model.safetensors", in / "small.safetensors", options); },
                       ErrorCode::same_file, {"adapter_config.json"});
  }
  EXPECT_FALSE(fs::exists(in / "small.safetensors"));
  EXPECT_EQ(read_text(in / "adapter_config.json"), input_config);

  // An existing config at the output: refused without --force, the weights not written either.
  fs::create_directory(dir_ / "out");
  std::ofstream(dir_ / "out" / "adapter_config.json") << "{}";
  test::expect_error([&] { resize_file(in, dir_ / "out", sv_fro()); }, ErrorCode::output_exists,
                     {"adapter_config.json", "--force"});
  EXPECT_EQ(files_below(dir_ / "out"), std::vector<std::string>{"adapter_config.json"});
  ResizeOptions force = sv_fro();
  force.force = true;
  const ResizeReport report = resize_file(in, dir_ / "out", force);
  e2e::expect_deltas_match_report(in / "adapter_model.safetensors", dir_ / "out" / "adapter_model.safetensors", report,
                                  kParam, 1e-5, peft_reading(in / "adapter_config.json"),
                                  peft_reading(dir_ / "out" / "adapter_config.json"));

  // A folder input's output is a folder.
  std::ofstream(dir_ / "file.safetensors") << "x";
  test::expect_error([&] { resize_file(in, dir_ / "file.safetensors", sv_fro()); }, ErrorCode::invalid_argument,
                     {"folder"});
}

TEST_F(PeftAdapter, DryRunAndInspectReadTheConfig) {
  const fs::path in = generate(peft_adapter(false));
  const ResizeReport plan = plan_file(in, sv_fro());
  EXPECT_TRUE(has_note(plan, (in / "adapter_config.json").string()));
  EXPECT_FALSE(has_note(plan, "rewritten"));
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  std::set<double> alphas;
  for (const testsupport::GenModule& module : manifest_) alphas.insert(module.scale * static_cast<double>(module.rank));
  for (const ModuleReport& module : plan.modules) EXPECT_TRUE(alphas.count(*module.old_alpha)) << module.stem;

  const Reader reader(in / "adapter_model.safetensors");
  const PeftSidecar sidecar = read_peft_sidecar(in / "adapter_config.json");
  const Inspection inspection = inspect_file(reader, &sidecar);
  EXPECT_EQ(inspection.peft_sidecar, (in / "adapter_config.json").string());
  EXPECT_EQ(inspection.modules_without_alpha, 0u);
  EXPECT_EQ(inspection.alphas.size(), 4u);
}

// batch: the config travels with its adapter into the mirrored tree, and counts in what is complete.
TEST_F(PeftAdapter, BatchWritesTheConfigBesideEachOutput) {
  const fs::path in = generate(peft_adapter(false));
  batch::Options options;
  options.scan.inputs = {in.string()};
  options.scan.output_dir = dir_ / "out";
  options.resize = sv_fro();
  batch::Observer quiet;
  batch::Summary summary = batch::run_batch(options, quiet);
  EXPECT_EQ(summary.count(batch::Status::ok), 1u);
  EXPECT_EQ(summary.count(batch::Status::skipped), 1u);  // adapter_config.json itself
  EXPECT_EQ(files_below(dir_ / "out"), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
  const auto after = testsupport::loader_modules(dir_ / "out" / "adapter_model.safetensors",
                                                 peft_reading(dir_ / "out" / "adapter_config.json"));
  EXPECT_EQ(after.size(), manifest_.size());

  EXPECT_EQ(batch::run_batch(options, quiet).count(batch::Status::exists), 1u);
  // A result without its config is not complete (a run stopped between the two files): done again.
  fs::remove(dir_ / "out" / "adapter_config.json");
  summary = batch::run_batch(options, quiet);
  EXPECT_EQ(summary.count(batch::Status::ok), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "adapter_config.json"));

  // In place, the input's config would have to be replaced too: refused, the folder left as it was.
  const std::string weights = read_text(in / "adapter_model.safetensors");
  const std::string config = read_text(in / "adapter_config.json");
  batch::Options in_place = options;
  in_place.scan.output_dir.clear();
  in_place.scan.in_place = true;
  EXPECT_EQ(batch::run_batch(in_place, quiet).count(batch::Status::failed), 1u);
  EXPECT_EQ(read_text(in / "adapter_model.safetensors"), weights);
  EXPECT_EQ(read_text(in / "adapter_config.json"), config);
  EXPECT_EQ(files_below(in), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
}

}  // namespace
}  // namespace lorakit
