// Conformance: for each naming family and module kind, a generated fixture with exactly that naming and
// layout is resized and re-read by the independent loader-semantics evaluator (tests/support). Every
// module's loader-computed ΔW must move by exactly √(1 − fro²) of the report, ranks must follow the
// reference rule on a dense SVD of ΔW, pass-through keys stay byte-identical, and the base-model
// guess must name the architecture of the full-size layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "loader_eval.hpp"
#include "lora_gen.hpp"
#include "reference_rules.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::GenSpec;
using testsupport::PeftMetadata;

struct Case {
  const char* arch;
  const char* family;
  const char* kind;
  const char* base_model;
  bool tucker = false;
  PeftMetadata peft = PeftMetadata::none;
  bool to_lora = false;
};

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  const Case& c = param_info.param;
  std::string name = std::string(c.arch) + "_" + c.family + "_" + c.kind + (c.tucker ? "_tucker" : "") +
                     (c.peft != PeftMetadata::none ? "_peftmeta" : "") + (c.to_lora ? "_tolora" : "");
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

GenSpec spec_for(const Case& c, unsigned shrink) {
  GenSpec spec;
  spec.arch = c.arch;
  spec.family = c.family;
  spec.kind = c.kind;
  spec.tucker = c.tucker;
  spec.peft_metadata = c.peft;
  spec.rank = 8;
  spec.shrink = shrink;
  spec.passthrough = true;
  spec.seed = 11;
  return spec;
}

class Conformance : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lorakit_conf_" + std::to_string(::getpid()) + "_" +
                                        case_name({GetParam(), 0}));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(Conformance, LoaderDeltaMovesByReportedRetention) {
  const Case& c = GetParam();
  const fs::path input = dir_ / "in.safetensors";
  const fs::path output = dir_ / "out.safetensors";
  testsupport::write_lora(spec_for(c, 16), input, true);
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = 0.9;
  options.to_lora = c.to_lora;
  const ResizeReport report = resize_file(input, output, options);

  const auto before = testsupport::loader_modules(input);
  const auto after = testsupport::loader_deltas(output);
  ASSERT_EQ(before.size(), report.modules.size());
  std::map<std::string, const ModuleReport*> by_stem;
  for (const ModuleReport& m : report.modules) by_stem[m.stem] = &m;
  std::size_t resized = 0;
  for (const auto& module : before) {
    SCOPED_TRACE(module.stem);
    // The evaluator keeps legacy diffusers' "_lora" in the stem (`…to_q_lora.down.weight`); lorakit
    // names the module by the layer it patches (`…to_q`).
    std::string stem = module.stem;
    if (!by_stem.count(stem) && stem.ends_with("_lora")) stem.resize(stem.size() - 5);
    ASSERT_TRUE(by_stem.count(stem));
    ASSERT_TRUE(after.count(module.stem));
    const ModuleReport& m = *by_stem.at(stem);
    const double error = testsupport::relative_error(module.delta, after.at(module.stem));
    if (m.outcome != ModuleOutcome::resized) {
      EXPECT_LT(error, 1e-12) << module_outcome_name(m.outcome);
      continue;
    }
    ++resized;
    const Eigen::VectorXd sigma = testsupport::singular_values(module.delta / module.scale);
    EXPECT_EQ(m.new_rank, testsupport::reference_sv_fro_rank(sigma, 0.9, m.old_rank));
    if (std::isnan(m.fro_retained)) {
      EXPECT_EQ(after.at(module.stem).norm(), 0.0);
      continue;
    }
    const double expected = std::sqrt(std::max(0.0, 1.0 - m.fro_retained * m.fro_retained));
    EXPECT_NEAR(error, expected, 3e-3) << "rank " << m.old_rank << " -> " << m.new_rank;
  }
  EXPECT_GT(resized, 0u);

  ASSERT_FALSE(report.passthrough.empty());
  const Reader in(input), out(output);
  for (const std::string& name : report.passthrough) {
    const TensorInfo* a = in.header().find(name);
    const TensorInfo* b = out.header().find(name);
    ASSERT_TRUE(a != nullptr && b != nullptr) << name;
    EXPECT_TRUE(in.read(*a) == out.read(*b)) << name;
  }
}

// The guess reads real widths, so it is checked on the full-size layout (header only, no data).
TEST_P(Conformance, BaseModelGuess) {
  const Case& c = GetParam();
  const testsupport::GenPlan plan = testsupport::plan_lora(spec_for(c, 1));
  const Layout layout = plan_layout(plan.tensors, plan.metadata, !plan.metadata.empty());
  const auto* bytes = reinterpret_cast<const std::byte*>(layout.prefix.data());
  const Header header = parse_header({bytes, layout.prefix.size()}, layout.file_size(), "plan");
  const AdapterModel model = build_adapter_model(header, "plan", [](const TensorInfo&) { return 4.0; });
  EXPECT_EQ(guess_base_model(model).name, c.base_model);
}

INSTANTIATE_TEST_SUITE_P(
    Families, Conformance,
    ::testing::Values(Case{"sd15", "kohya", "lora", "SD1.5"}, Case{"sd15", "kohya", "locon", "SD1.5"},
                      Case{"sd15", "kohya", "tucker", "SD1.5"}, Case{"sd15", "kohya", "dora", "SD1.5"},
                      Case{"sd15", "kohya", "loha", "SD1.5"}, Case{"sd15", "kohya", "loha", "SD1.5", true},
                      Case{"sd15", "kohya", "loha", "SD1.5", false, PeftMetadata::none, true},
                      Case{"sd15", "kohya", "lokr", "SD1.5"},
                      Case{"sd15", "kohya", "lokr", "SD1.5", false, PeftMetadata::none, true},
                      Case{"sdxl", "kohya", "lora", "SDXL"}, Case{"flux", "kohya", "lora", "Flux"},
                      Case{"sd3", "kohya", "lora", "SD3"}, Case{"hunyuan", "kohya", "lora", "HunyuanVideo"},
                      Case{"wan13b", "kohya", "lora", "Wan"}, Case{"wan14b-i2v", "kohya-fun", "locon", "Wan"},
                      Case{"zimage", "kohya", "lora", "Z-Image"}, Case{"flux", "lycoris", "lokr", "Flux"},
                      Case{"sd15", "lycoris", "lora", "SD1.5"},
                      Case{"flux", "peft", "lora", "Flux", false, PeftMetadata::plain},
                      Case{"sd15", "peft", "lora", "SD1.5", false, PeftMetadata::prefixed},
                      Case{"flux", "peft", "dora", "Flux"}, Case{"wan13b", "peft", "lora", "Wan"},
                      Case{"zimage", "comfy", "lora", "Z-Image"}, Case{"sdxl", "controllora", "lora", "SDXL"},
                      Case{"sd15", "legacy", "lora", "SD1.5"}, Case{"flux", "xlabs", "lora", "Flux"}),
    case_name);

}  // namespace
}  // namespace lorakit
