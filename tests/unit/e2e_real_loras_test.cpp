// Real LoRA files that nobody on this project wrote (../shared/real-loras, see its README; skipped when
// the folder is absent): every .safetensors file there is inspected, resized (sv_fro 0.9 and a fixed
// rank) and re-read by the independent loader evaluator, module by module, or refused with the error
// its format calls for. A PEFT adapter is read with the adapter_config.json beside it, before and after.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "e2e_checks.hpp"
#include "loader_eval.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "reference_rules.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::EvalOptions;

const fs::path& real_loras() {
  static const fs::path folder = fs::path(LORAKIT_SOURCE_DIR) / ".." / "shared" / "real-loras";
  return folder;
}

// Files refused on purpose (path below real-loras), with the error and a fragment of its message.
struct Refusal {
  std::string relative;
  ErrorCode code;
  std::string fragment;
};
const std::vector<Refusal>& refusals() {
  static const std::vector<Refusal> list = {
      {"cloneofsimo+lora/example_loras/analog_svd_rank4.safetensors", ErrorCode::adapter_format_unsupported,
       "early cloneofsimo/lora format"},
  };
  return list;
}

std::vector<fs::path> real_files() {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(real_loras())) {
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

const Refusal* refusal_of(const fs::path& file) {
  const std::string relative = file.lexically_relative(real_loras()).generic_string();
  const auto found = std::find_if(refusals().begin(), refusals().end(),
                                  [&](const Refusal& r) { return r.relative == relative; });
  return found == refusals().end() ? nullptr : &*found;
}

EvalOptions reading(const std::optional<fs::path>& config) {
  EvalOptions options;
  if (config) options.peft_config = *config;
  return options;
}

// The rounding the output's factor dtype adds to a module's relative error.
double tolerance_for(const fs::path& file) {
  const Reader reader(file);
  double tolerance = 1e-5;
  for (const TensorInfo& tensor : reader.header().tensors) {
    if (tensor.dtype == DType::BF16) tolerance = std::max(tolerance, 1e-2);
    if (tensor.dtype == DType::F16) tolerance = std::max(tolerance, 3e-3);
  }
  return tolerance;
}

// One module at a time (real layers are large): the loader ΔW of a resized module moves by √(1 − fro²)
// of the report, any other stays as it was; on modules small enough for a dense SVD, sv_fro ranks are the
// reference rule's.
void expect_modules_match_report(const fs::path& input, const fs::path& output, const ResizeReport& report,
                                 const std::optional<fs::path>& input_config,
                                 const std::optional<fs::path>& output_config, std::optional<double> sv_fro) {
  const double tolerance = tolerance_for(output);
  const testsupport::LoaderFile before_file(input, reading(input_config));
  const testsupport::LoaderFile after_file(output, reading(output_config));
  ASSERT_EQ(before_file.stems().size(), report.modules.size());
  for (const std::string& stem : before_file.stems()) {
    SCOPED_TRACE(stem);
    // The evaluator keeps legacy diffusers' "_lora" in the stem; lorakit names the layer.
    const std::string layer = stem.ends_with("_lora") ? stem.substr(0, stem.size() - 5) : stem;
    const auto module = std::find_if(report.modules.begin(), report.modules.end(),
                                     [&](const ModuleReport& m) { return m.stem == stem || m.stem == layer; });
    ASSERT_NE(module, report.modules.end());
    const testsupport::LoaderModule before = before_file.module(stem);
    const testsupport::LoaderModule after = after_file.module(stem);
    const double error = testsupport::relative_error(before.delta, after.delta);
    if (module->outcome != ModuleOutcome::resized) {
      EXPECT_EQ(error, 0.0) << module_outcome_name(module->outcome);
      continue;
    }
    EXPECT_NEAR(error, std::sqrt(std::max(0.0, 1.0 - module->fro_retained * module->fro_retained)), tolerance);
    if (sv_fro && std::min(before.delta.rows(), before.delta.cols()) <= 320) {
      const Eigen::VectorXd sigma = testsupport::singular_values(before.delta / before.scale);
      EXPECT_EQ(module->new_rank, testsupport::reference_sv_fro_rank(sigma, *sv_fro, module->old_rank));
    }
  }
}

class RealLoras : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(real_loras())) GTEST_SKIP() << real_loras() << " is absent";
  }

  // Resizes every file with `options`, or expects its refusal, and checks each result.
  void resize_all(const ResizeOptions& options, std::optional<double> sv_fro) {
    std::size_t checked = 0;
    for (const fs::path& file : real_files()) {
      SCOPED_TRACE(file.string());
      const fs::path out_dir = scratch_ / std::to_string(checked++);
      fs::create_directories(out_dir);
      // Same name as the input: a PEFT adapter's rewritten config goes beside it.
      const fs::path output = out_dir / file.filename();
      if (const Refusal* refusal = refusal_of(file)) {
        test_refusal(*refusal, [&] { resize_file(file, output, options); });
        EXPECT_FALSE(fs::exists(output));
        continue;
      }
      const std::optional<fs::path> config = peft_sidecar_path(file);
      const ResizeReport report = resize_file(file, output, options);
      ASSERT_FALSE(report.modules.empty());
      const std::optional<fs::path> output_config =
          config ? std::optional(out_dir / kPeftConfigName) : std::nullopt;
      EXPECT_EQ(fs::exists(out_dir / kPeftConfigName), config.has_value());
      expect_modules_match_report(file, output, report, config, output_config, sv_fro);
      e2e::expect_passthrough_identical(file, output, report);
    }
    EXPECT_GT(checked, refusals().size());
  }

  template <typename F>
  static void test_refusal(const Refusal& refusal, F&& action) {
    try {
      action();
      ADD_FAILURE() << "expected a refusal";
    } catch (const Error& e) {
      EXPECT_EQ(error_code_name(e.code()), error_code_name(refusal.code)) << e.what();
      EXPECT_NE(std::string(e.what()).find(refusal.fragment), std::string::npos) << e.what();
    }
  }

  testutil::ScratchFolder scratch_;
};

TEST_F(RealLoras, EveryFileIsInspectedOrRefused) {
  for (const fs::path& file : real_files()) {
    SCOPED_TRACE(file.string());
    const Reader reader(file);
    const std::optional<PeftSidecar> sidecar = find_peft_sidecar(file, std::nullopt);
    if (const Refusal* refusal = refusal_of(file)) {
      test_refusal(*refusal, [&] { inspect_file(reader, sidecar ? &*sidecar : nullptr); });
      continue;
    }
    const Inspection inspection = inspect_file(reader, sidecar ? &*sidecar : nullptr);
    EXPECT_GT(inspection.module_count, 0u);
    EXPECT_FALSE(inspection.families.empty());
    EXPECT_EQ(inspection.module_count, testsupport::LoaderFile(file).stems().size());
    if (sidecar) {
      EXPECT_EQ(inspection.peft_sidecar, sidecar->path.string());
      EXPECT_EQ(inspection.modules_without_alpha, 0u);  // the sidecar gives every module its lora_alpha
    }
  }
}

TEST_F(RealLoras, SvFroResizeKeepsWhatLoadersCompute) {
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = 0.9;
  resize_all(options, 0.9);
}

TEST_F(RealLoras, FixedRankResizeKeepsWhatLoadersCompute) {
  ResizeOptions options;
  options.rank = 2;
  resize_all(options, std::nullopt);
}

}  // namespace
}  // namespace lorakit
