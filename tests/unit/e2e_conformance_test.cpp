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
#include <vector>

#include "e2e_checks.hpp"
#include "lora_gen.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::GenSpec;
using testsupport::PeftMetadata;
using Shape = std::vector<std::uint64_t>;

struct Case {
  const char* arch;
  const char* family;
  const char* kind;
  const char* base_model;
  bool tucker = false;
  PeftMetadata peft = PeftMetadata::none;
  bool to_lora = false;
  bool conv = false;  // also the UNet conv layers (LoHa / LoKr store their kernels flattened)
};

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  const Case& c = param_info.param;
  std::string name = std::string(c.arch) + "_" + c.family + "_" + c.kind + (c.tucker ? "_tucker" : "") +
                     (c.peft != PeftMetadata::none ? "_peftmeta" : "") + (c.to_lora ? "_tolora" : "") + (c.conv ? "_conv" : "");
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
  spec.conv = c.conv;
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

// kohya and A1111 build a Conv2d down for conv layers: a module written as plain LoRA for a conv layer
// must have down (k, in, kh, kw) and up (out, k, 1, 1), also when its LyCORIS input kept the kernel
// flattened. The generator's layer list says which layers are convs.
void expect_conv_modules_carry_their_kernel(const Case& c, const fs::path& output, const ResizeReport& report) {
  std::map<std::string, Shape> weights;
  for (const auto& module : testsupport::plan_lora(spec_for(c, 16)).manifest) {
    weights[module.stem] = module.weight_shape;
  }
  const Reader reader(output);
  std::size_t conv_modules = 0;
  for (const ModuleReport& m : report.modules) {
    if (m.outcome != ModuleOutcome::resized || weights.at(m.stem).size() < 4) continue;
    // SD1.5's 1×1 proj_in/proj_out are told from SD2's linear ones by the 768-wide cross-attention
    // context, which a shrunk fixture does not have (adapter_model_test covers them).
    if (m.stem.ends_with("_proj_in") || m.stem.ends_with("_proj_out")) continue;
    SCOPED_TRACE(m.stem);
    ++conv_modules;
    const Shape& weight = weights.at(m.stem);
    const TensorInfo* down = reader.header().find(m.stem + ".lora_down.weight");
    const TensorInfo* up = reader.header().find(m.stem + ".lora_up.weight");
    ASSERT_TRUE(down != nullptr && up != nullptr);
    Shape expected_down{m.new_rank, weight[1]};
    expected_down.insert(expected_down.end(), weight.begin() + 2, weight.end());
    EXPECT_EQ(down->shape, expected_down);
    EXPECT_EQ(up->shape, (Shape{weight[0], m.new_rank, 1, 1}));
  }
  EXPECT_GT(conv_modules, 0u);
}

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

  EXPECT_GT(e2e::expect_deltas_match_report(input, output, report, 0.9, 3e-3), 0u);
  ASSERT_FALSE(report.passthrough.empty());
  e2e::expect_passthrough_identical(input, output, report);
  if (c.conv) expect_conv_modules_carry_their_kernel(c, output, report);
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
                      Case{"sd15", "kohya", "loha", "SD1.5", false, PeftMetadata::none, true, true},
                      Case{"sdxl", "kohya", "loha", "SDXL", false, PeftMetadata::none, true, true},
                      Case{"sd15", "kohya", "lokr", "SD1.5", false, PeftMetadata::none, true, true},
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
