// End-to-end: size and quality targets, and the module filters, on generated LoRAs of real trainers'
// names and shapes, checked against the files written and the independent loader evaluator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "e2e_checks.hpp"
#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::GenSpec;

GenSpec spec_of(std::string arch, std::string family, std::string kind, DType dtype, std::size_t rank,
                unsigned shrink) {
  GenSpec spec;
  spec.arch = std::move(arch);
  spec.family = std::move(family);
  spec.kind = std::move(kind);
  spec.dtype = dtype;
  spec.rank = rank;
  spec.shrink = shrink;
  return spec;
}

std::map<std::string, const ModuleReport*> by_stem(const ResizeReport& report) {
  std::map<std::string, const ModuleReport*> modules;
  for (const ModuleReport& m : report.modules) modules[m.stem] = &m;
  return modules;
}

void expect_same_plan(const ResizeReport& planned, const ResizeReport& written) {
  EXPECT_EQ(planned.output_bytes, written.output_bytes);
  ASSERT_EQ(planned.modules.size(), written.modules.size());
  for (std::size_t i = 0; i < planned.modules.size(); ++i) {
    EXPECT_EQ(planned.modules[i].new_rank, written.modules[i].new_rank) << planned.modules[i].stem;
    EXPECT_EQ(planned.modules[i].outcome, written.modules[i].outcome) << planned.modules[i].stem;
  }
  EXPECT_EQ(planned.average_fro, written.average_fro);
  EXPECT_EQ(planned.energy_weighted_fro, written.energy_weighted_fro);
}

// The largest number of bytes one more rank of any resized module costs (its factors' elements × width).
std::uint64_t largest_rank_cost(const fs::path& input, const ResizeReport& report) {
  const Reader reader(input);
  std::uint64_t largest = 0;
  for (const ModuleReport& m : report.modules) {
    if (m.outcome != ModuleOutcome::resized) continue;
    std::uint64_t in_flat = 1;
    for (std::size_t d = 1; d < m.weight_shape.size(); ++d) in_flat *= m.weight_shape[d];
    largest = std::max(largest, (m.weight_shape[0] + in_flat) * 4);
  }
  return largest;
}

struct Case {
  const char* name;
  GenSpec spec;
  double size_fraction = 0.25;  // of the input, for the byte target (LyCORIS files are compact already)
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

std::vector<Case> cases() {
  std::vector<Case> list;
  list.push_back({"sd15_kohya_fp16_conv", spec_of("sd15", "kohya", "locon", DType::F16, 16, 4)});
  GenSpec mixed = spec_of("sdxl", "kohya", "lora", DType::F16, 8, 8);
  mixed.mixed_dtypes = true;
  list.push_back({"sdxl_kohya_mixed", mixed});
  GenSpec peft = spec_of("flux", "peft", "lora", DType::BF16, 8, 16);
  peft.peft_metadata = testsupport::PeftMetadata::plain;
  list.push_back({"flux_peft_metadata", peft});
  list.push_back({"wan_comfy_bf16", spec_of("wan13b", "comfy", "lora", DType::BF16, 8, 8)});
  list.push_back({"sd15_loha", spec_of("sd15", "kohya", "loha", DType::F16, 4, 4), 0.9});
  list.push_back({"sd15_lokr", spec_of("sd15", "kohya", "lokr", DType::F16, 4, 4), 0.9});
  GenSpec no_metadata = spec_of("zimage", "kohya", "lora", DType::F32, 8, 8);
  no_metadata.metadata = false;
  list.push_back({"zimage_kohya_fp32_no_metadata", no_metadata});
  return list;
}

class TargetCases : public ::testing::TestWithParam<Case> {};

// The dry run's size is the written file's, to the byte, and the file is within the target: for byte
// targets, ratio targets, retention targets and with --drop, across dtypes, families and metadata.
TEST_P(TargetCases, PlannedSizeIsTheWrittenSizeAndWithinTheTarget) {
  const testutil::ScratchFolder dir;
  const fs::path input = dir / "in.safetensors";
  const std::uint64_t input_bytes = testsupport::write_lora(GetParam().spec, input, true).bytes;

  std::vector<std::pair<std::string, ResizeOptions>> runs;
  ResizeOptions ratio;
  ratio.target_ratio = 0.4;
  runs.push_back({"ratio 0.4", ratio});
  ResizeOptions size;
  size.target_size = static_cast<std::uint64_t>(static_cast<double>(input_bytes) * GetParam().size_fraction);
  size.objective = Objective::energy;
  runs.push_back({"size, energy", size});
  ResizeOptions retention;
  retention.target_retention = 0.9;
  runs.push_back({"retention 0.9", retention});
  ResizeOptions dropping = ratio;
  dropping.drop = {"(^|[._])1[._]", "attn2"};
  runs.push_back({"ratio 0.4 with --drop", dropping});
  ResizeOptions small = ratio;
  small.target_ratio = 0.05;
  small.allow_drop = true;
  runs.push_back({"ratio 0.05 --allow-drop", small});

  bool checked_deltas = false;
  for (auto& [label, options] : runs) {
    SCOPED_TRACE(label);
    const fs::path output = dir / "out.safetensors";
    options.force = true;
    ResizeReport planned;
    try {
      planned = plan_file(input, options);
    } catch (const Error& e) {
      // A compact file (LoKr) may have no smaller form: that must be said, and only without --allow-drop.
      EXPECT_EQ(e.code(), ErrorCode::target_unreachable) << e.what();
      EXPECT_FALSE(options.allow_drop) << e.what();
      EXPECT_FALSE(fs::exists(output));
      continue;
    }
    const ResizeReport written = resize_file(input, output, options);
    EXPECT_EQ(fs::file_size(output), written.output_bytes);
    expect_same_plan(planned, written);
    if (options.target_ratio || options.target_size) {
      ASSERT_TRUE(written.target_bytes.has_value());
      EXPECT_LE(written.output_bytes, *written.target_bytes);
      // Unless every module is at its best, less than one more rank of the widest module (plus header
      // digits) is left over.
      if (written.resized > 0) {
        EXPECT_LT(*written.target_bytes - written.output_bytes, largest_rank_cost(input, written) + 1024);
      }
    } else {
      const double objective = written.average_fro;
      EXPECT_GE(objective, 0.9);
    }
    // The loader evaluator on the last (dropping) run and one other: dense ΔWs are the slow part.
    if (&options == &runs.back().second || !checked_deltas) {
      e2e::expect_deltas_match_report(input, output, written, std::nullopt, 2e-2);
      checked_deltas = true;
    }
    const Reader reread(output);  // the container is valid
    fs::remove(output);
    EXPECT_EQ(reread.file_size(), written.output_bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, TargetCases, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& tested) { return std::string(tested.param.name); });

class TargetFixture : public ::testing::Test {
 protected:
  fs::path generate(const GenSpec& spec) {
    const fs::path path = dir_ / "in.safetensors";
    testsupport::write_lora(spec, path, true);
    return path;
  }
  testutil::ScratchFolder dir_;
};

// At the size sv_fro 0.95 writes, spending bytes by value per byte keeps at least sv_fro's mean retention;
// at sv_fro's mean retention, it needs no more bytes.
TEST_F(TargetFixture, BudgetBeatsPerModuleThresholdsAtEqualSizeAndEqualRetention) {
  for (const GenSpec& spec : {spec_of("sdxl", "kohya", "lora", DType::F16, 32, 4),
                              spec_of("flux", "kohya", "lora", DType::BF16, 32, 8)}) {
    SCOPED_TRACE(spec.arch);
    const fs::path input = generate(spec);
    ResizeOptions fro;
    fro.method = RankMethod::sv_fro;
    fro.param = 0.95;
    const ResizeReport per_module = plan_file(input, fro);
    ResizeOptions at_size;
    at_size.target_size = per_module.output_bytes;
    const ResizeReport budget = plan_file(input, at_size);
    EXPECT_LE(budget.output_bytes, per_module.output_bytes);
    EXPECT_GE(budget.average_fro, per_module.average_fro);
    ResizeOptions at_retention;
    at_retention.target_retention = per_module.average_fro;
    const ResizeReport smallest = plan_file(input, at_retention);
    EXPECT_GE(smallest.average_fro, per_module.average_fro);
    EXPECT_LE(smallest.output_bytes, per_module.output_bytes);
  }
}

TEST_F(TargetFixture, EnergyObjectiveReachesTheFileRetention) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 16, 4));
  ResizeOptions options;
  options.target_retention = 0.8;
  options.objective = Objective::energy;
  const ResizeReport report = plan_file(input, options);
  EXPECT_GE(report.energy_weighted_fro, 0.8);
  // And it is the smallest such file within one module's rank: the next smaller budget falls short.
  ResizeOptions smaller;
  smaller.objective = Objective::energy;
  smaller.target_size = report.output_bytes - largest_rank_cost(input, report);
  EXPECT_LT(plan_file(input, smaller).energy_weighted_fro, 0.8);
}

TEST_F(TargetFixture, UnreachableTargetsAreRefusedWithTheBestPossible) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 8, 4));
  ResizeOptions tiny;
  tiny.target_size = 1000;
  try {
    plan_file(input, tiny);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::target_unreachable);
    EXPECT_NE(std::string(e.what()).find("below the smallest file these options allow"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--allow-drop"), std::string::npos) << e.what();
  }
  ResizeOptions capped;
  capped.target_retention = 1.0;
  capped.max_rank = 1;
  try {
    plan_file(input, capped);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::target_unreachable);
    EXPECT_NE(std::string(e.what()).find("is above the best these options allow"), std::string::npos) << e.what();
  }
}

TEST_F(TargetFixture, AllowDropRemovesModulesAndListsThem) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 8, 4));
  ResizeOptions options;
  options.target_ratio = 0.02;
  options.allow_drop = true;
  const ResizeReport report = resize_file(input, dir_ / "out.safetensors", options);
  EXPECT_GT(report.dropped, 0u);
  const Reader out(dir_ / "out.safetensors");
  for (const ModuleReport& m : report.modules) {
    if (m.outcome != ModuleOutcome::dropped) continue;
    EXPECT_EQ(m.new_rank, 0u);
    EXPECT_EQ(m.fro_retained, 0.0) << "a module the target drops counts as nothing kept";
    for (const TensorInfo& info : out.header().tensors) EXPECT_FALSE(info.name.starts_with(m.stem + ".")) << info.name;
  }
  ResizeOptions without = options;
  without.allow_drop = false;
  EXPECT_THROW(plan_file(input, without), Error);
}

// --include / --exclude / --drop / --min-rank / --max-rank, each as documented, with any method.
TEST_F(TargetFixture, FiltersSelectModulesByName) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 16, 4));
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = 0.5;
  options.include = {"lora_unet_"};
  options.exclude = {"attn1"};
  options.drop = {"_ff_net_"};
  options.min_rank = 3;
  options.max_rank = 6;
  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, options);
  const Reader in(input), out(output);
  std::size_t counts[5] = {};
  for (const ModuleReport& m : report.modules) {
    SCOPED_TRACE(m.stem);
    const bool unet = m.stem.starts_with("lora_unet_");
    if (m.stem.find("_ff_net_") != std::string::npos) {
      EXPECT_EQ(m.outcome, ModuleOutcome::dropped);
      EXPECT_EQ(m.note, "--drop");
      EXPECT_TRUE(std::isnan(m.fro_retained)) << "a module removed by --drop is not measured";
      EXPECT_EQ(out.header().find(m.stem + ".lora_up.weight"), nullptr);
      ++counts[0];
    } else if (!unet || m.stem.find("attn1") != std::string::npos) {
      EXPECT_EQ(m.outcome, ModuleOutcome::excluded);
      EXPECT_EQ(m.note, unet ? "--exclude" : "not --include");
      EXPECT_EQ(m.new_rank, m.old_rank);
      for (const char* role : {".lora_up.weight", ".lora_down.weight", ".alpha"}) {
        const TensorInfo* a = in.header().find(m.stem + role);
        const TensorInfo* b = out.header().find(m.stem + role);
        ASSERT_TRUE(a != nullptr && b != nullptr);
        EXPECT_TRUE(in.read(*a) == out.read(*b)) << role << " is byte-identical";
      }
      ++counts[unet ? 1 : 2];
    } else {
      EXPECT_GE(m.new_rank, 3u);
      EXPECT_LE(m.new_rank, 6u);
      ++counts[3];
    }
  }
  for (std::size_t i = 0; i < 4; ++i) EXPECT_GT(counts[i], 0u) << "filter group " << i << " is empty";
  EXPECT_EQ(report.dropped, counts[0]);
  EXPECT_EQ(report.excluded, counts[1] + counts[2]);
  e2e::expect_deltas_match_report(input, output, report, std::nullopt, 2e-2);
}

TEST_F(TargetFixture, FilterPatternsAreValidated) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 4, 8));
  ResizeOptions options;
  options.rank = 2;
  options.include = {"lora_(unet"};
  try {
    plan_file(input, options);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("--include: 'lora_(unet' is not a valid regular expression"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(TargetFixture, KneeMethodResizesEveryModuleToItsKnee) {
  const fs::path input = generate(spec_of("sd15", "kohya", "lora", DType::F16, 16, 4));
  ResizeOptions options;
  options.method = RankMethod::sv_knee;
  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, options);
  const auto before = testsupport::loader_modules(input);
  const auto modules = by_stem(report);
  for (const auto& module : before) {
    const ModuleReport& m = *modules.at(module.stem);
    const Eigen::VectorXd sigma = testsupport::singular_values(module.delta / module.scale);
    const double energy = sigma.squaredNorm();
    std::uint64_t knee = 0;
    for (Eigen::Index i = 0; i < sigma.size(); ++i) {
      // σ at dense round-off level are not the module's: the chord runs over its r values
      if (static_cast<double>(m.old_rank) * sigma[i] * sigma[i] >= energy) ++knee;
    }
    knee = std::max<std::uint64_t>(knee, 1);
    if (sigma[0] <= 1e-6) knee = 1;
    EXPECT_EQ(m.new_rank, knee) << module.stem;
  }
  e2e::expect_deltas_match_report(input, output, report, std::nullopt, 2e-2);
}

}  // namespace
}  // namespace lorakit
