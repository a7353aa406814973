// Conformance: for each naming family and module kind, a generated fixture with exactly that naming and
// layout is resized and re-read by the independent loader-semantics evaluator (tests/support). Every
// module's loader-computed ΔW must move by exactly √(1 − fro²) of the report, ranks must follow the
// reference rule on a dense SVD of ΔW, pass-through keys stay byte-identical, and the base-model
// guess must name the architecture of the full-size layout.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
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
  bool mixed_dtypes = false;
  bool peft_infix = false;  // base_model.model.<path>.lora_A.default.weight
};

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  const Case& c = param_info.param;
  std::string name = std::string(c.arch) + "_" + c.family + "_" + c.kind + (c.tucker ? "_tucker" : "") +
                     (c.peft == PeftMetadata::sidecar ? "_sidecar" : c.peft != PeftMetadata::none ? "_peftmeta" : "") + (c.to_lora ? "_tolora" : "") + (c.conv ? "_conv" : "") +
                     (c.mixed_dtypes ? "_mixed" : "") + (c.peft_infix ? "_infix" : "");
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

// Every family × kind this suite resizes and checks; README.md shows the same list (see the end).
std::vector<Case> conformance_cases() {
  const PeftMetadata none = PeftMetadata::none;
  return {
      Case{"sd15", "kohya", "lora", "SD1.5"}, Case{"sd15", "kohya", "locon", "SD1.5"},
      Case{"sd15", "kohya", "tucker", "SD1.5"}, Case{"sd15", "kohya", "dora", "SD1.5"},
      Case{"sd15", "kohya", "loha", "SD1.5"}, Case{"sd15", "kohya", "loha", "SD1.5", true},
      Case{"sd15", "kohya", "loha", "SD1.5", false, none, true},
      Case{"sd15", "kohya", "loha", "SD1.5", false, none, true, true},
      Case{"sdxl", "kohya", "loha", "SDXL", false, none, true, true},
      Case{"sd15", "kohya", "lokr", "SD1.5"}, Case{"sd15", "kohya", "lokr", "SD1.5", false, none, true},
      Case{"sd15", "kohya", "lokr", "SD1.5", false, none, true, true},
      Case{"sdxl", "kohya", "lora", "SDXL"}, Case{"sdxl", "kohya", "lora", "SDXL", false, none, false, false, true},
      Case{"flux", "kohya", "lora", "Flux"}, Case{"sd3", "kohya", "lora", "SD3"},
      Case{"hunyuan", "kohya", "lora", "HunyuanVideo"}, Case{"wan13b", "kohya", "lora", "Wan"},
      Case{"wan14b-i2v", "kohya-fun", "locon", "Wan"}, Case{"zimage", "kohya", "lora", "Z-Image"},
      Case{"flux", "lycoris", "lokr", "Flux"}, Case{"sd15", "lycoris", "lora", "SD1.5"},
      Case{"flux", "peft", "lora", "Flux", false, PeftMetadata::plain},
      Case{"sd15", "peft", "lora", "SD1.5", false, PeftMetadata::prefixed}, Case{"flux", "peft", "dora", "Flux"},
      Case{"sd15", "peft", "lora", "SD1.5", false, PeftMetadata::sidecar},
      Case{"wan13b", "peft", "lora", "Wan"},
      Case{"flux", "peft", "lora", "Flux", false, PeftMetadata::plain, false, false, false, true}, Case{"zimage", "comfy", "lora", "Z-Image"},
      Case{"sdxl", "controllora", "lora", "SDXL"}, Case{"sd15", "legacy", "lora", "SD1.5"},
      Case{"flux", "xlabs", "lora", "Flux"},
  };
}

// gtest prints a parameter in failure messages and ctest test names; the case name says it all.
void PrintTo(const Case& c, std::ostream* os) { *os << case_name({c, 0}); }

GenSpec spec_for(const Case& c, unsigned shrink) {
  GenSpec spec;
  spec.arch = c.arch;
  spec.family = c.family;
  spec.kind = c.kind;
  spec.tucker = c.tucker;
  spec.conv = c.conv;
  spec.mixed_dtypes = c.mixed_dtypes;
  spec.peft_infix = c.peft_infix;
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
  // A raw PEFT adapter is a folder: its adapter_config.json beside the weights, read and rewritten.
  const bool folder = c.peft == PeftMetadata::sidecar;
  const fs::path input = folder ? dir_ / "in" / kPeftWeightsName : dir_ / "in.safetensors";
  const fs::path output = folder ? dir_ / "out" / kPeftWeightsName : dir_ / "out.safetensors";
  fs::create_directories(input.parent_path());
  fs::create_directories(output.parent_path());
  testsupport::write_lora(spec_for(c, 16), input, true);
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = 0.9;
  options.to_lora = c.to_lora;
  const ResizeReport report = resize_file(input, output, options);

  testsupport::EvalOptions input_options, output_options;
  if (folder) {
    input_options.peft_config = input.parent_path() / kPeftConfigName;
    output_options.peft_config = output.parent_path() / kPeftConfigName;
  }
  EXPECT_GT(e2e::expect_deltas_match_report(input, output, report, 0.9, 3e-3, input_options, output_options), 0u);
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

INSTANTIATE_TEST_SUITE_P(Families, Conformance, ::testing::ValuesIn(conformance_cases()), case_name);

// README.md's "Conformance" table is this suite's case list, family × kind, so the two cannot drift.
std::string family_kind_table() {
  const std::vector<std::string> kinds = testsupport::kind_names();
  std::map<std::string, std::map<std::string, std::vector<std::string>>> cells;  // family → kind → models
  for (const Case& c : conformance_cases()) {
    std::vector<std::string>& models = cells[c.family][c.kind];
    if (std::find(models.begin(), models.end(), c.base_model) == models.end()) models.push_back(c.base_model);
  }
  std::string table = "| family |";
  for (const std::string& kind : kinds) table += " " + kind + " |";
  table += "\n|---|";
  for (std::size_t i = 0; i < kinds.size(); ++i) table += "---|";
  table += "\n";
  for (const std::string& family : testsupport::family_names()) {
    if (!cells.count(family)) continue;
    table += "| " + family + " |";
    for (const std::string& kind : kinds) {
      const auto found = cells[family].find(kind);
      std::string cell = "—";
      if (found != cells[family].end()) {
        cell.clear();
        for (const std::string& model : found->second) cell += (cell.empty() ? "" : ", ") + model;
      }
      table += " " + cell + " |";
    }
    table += "\n";
  }
  return table;
}

std::string variant_list() {
  std::string list;
  for (const Case& c : conformance_cases()) {
    std::vector<std::string> variants;
    if (c.tucker) variants.push_back("Tucker cores");
    if (c.peft == PeftMetadata::plain) variants.push_back("alpha in `lora_adapter_metadata`");
    if (c.peft == PeftMetadata::prefixed) variants.push_back("alpha in component-prefixed `lora_adapter_metadata`");
    if (c.peft == PeftMetadata::sidecar) variants.push_back("raw adapter folder, alpha in `adapter_config.json`");
    if (c.conv) variants.push_back("UNet conv layers");
    if (c.mixed_dtypes) variants.push_back("F16/BF16/F32 factors in one file");
    if (c.peft_infix) variants.push_back("`base_model.model.…lora_A.default.weight` keys");
    if (c.to_lora) variants.push_back("`--to-lora`");
    if (variants.empty()) continue;
    std::string line = fmt::format("- {} {} {}: ", c.base_model, c.family, c.kind);
    for (std::size_t i = 0; i < variants.size(); ++i) line += (i ? ", " : "") + variants[i];
    list += line + "\n";
  }
  return list;
}

TEST(ConformanceTable, IsTheReadmeTable) {
  constexpr std::string_view begin = "<!-- conformance table: generated by tests/unit/e2e_conformance_test.cpp -->\n";
  constexpr std::string_view end = "<!-- end of conformance table -->";
  std::ifstream file(fs::path(LORAKIT_SOURCE_DIR) / "README.md", std::ios::binary);
  const std::string readme{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  const std::size_t from = readme.find(begin);
  const std::size_t to = readme.find(end);
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to) << "README.md has no table markers";
  const std::string expected = family_kind_table() + "\nVariants, each a case of its own:\n" + variant_list();
  EXPECT_EQ(readme.substr(from + begin.size(), to - from - begin.size()), expected)
      << "README.md's conformance table is out of date; between the markers it should read:\n" << expected;
}

}  // namespace
}  // namespace lorakit
