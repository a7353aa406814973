// End-to-end: generated LoRAs with real trainers' names and shapes → resize_file → re-read by the
// independent loader-semantics evaluator (tests/support/loader_eval), compared with dense references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <Eigen/SVD>
#include <nlohmann/json.hpp>

#include "e2e_checks.hpp"
#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::GenSpec;

std::vector<std::byte> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::uint64_t header_length(const std::vector<std::byte>& bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}

nlohmann::json header_json(const std::vector<std::byte>& bytes) {
  const auto* begin = reinterpret_cast<const char*>(bytes.data()) + 8;
  return nlohmann::json::parse(begin, begin + header_length(bytes));
}

class ResizeEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lorakit_e2e_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path generate(const GenSpec& spec, const std::string& name) {
    const fs::path path = dir_ / name;
    testsupport::write_lora(spec, path, true);
    return path;
  }

  // Writes `tensors` to in.safetensors and resizes it to out.safetensors at a fixed rank.
  ResizeReport resize_tensors(const std::vector<testsupport::RawTensor>& tensors, std::uint64_t rank) {
    testsupport::write_tensors(tensors, {}, dir_ / "in.safetensors");
    ResizeOptions options;
    options.rank = rank;
    return resize_file(dir_ / "in.safetensors", dir_ / "out.safetensors", options);
  }

  static ResizeOptions sv_fro(double p) {
    ResizeOptions options;
    options.method = RankMethod::sv_fro;
    options.param = p;
    return options;
  }

  fs::path dir_;
};

GenSpec small_sd15() {
  GenSpec spec;
  spec.arch = "sd15";
  spec.family = "kohya";
  spec.rank = 16;
  spec.conv = true;
  spec.shrink = 4;
  spec.zero_module = true;
  spec.dead_fraction = 0.05;
  spec.seed = 7;
  return spec;
}

// The loader-computed ΔW of every module moves by exactly the dropped energy: relative error
// √(1 − fro²) up to fp16 rounding of the written factors; ranks equal the reference rule applied
// to a dense SVD of each module's ΔW.
TEST_F(ResizeEndToEnd, LoaderDeltaErrorMatchesReportedRetentionAndReferenceRanks) {
  const fs::path input = generate(small_sd15(), "in.safetensors");
  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, sv_fro(0.9));

  const std::size_t resized = e2e::expect_deltas_match_report(input, output, report, 0.9, 2e-3);
  EXPECT_GT(resized, report.modules.size() / 2);
  EXPECT_LT(report.output_bytes, report.input_bytes);
  EXPECT_EQ(report.output_bytes, fs::file_size(output));
}

// Input bytes never change; sshs hashes equal sha256 recomputed here from the output's bytes, with
// the ss_*-only header length derived independently (nlohmann) as kohya serializes it.
TEST_F(ResizeEndToEnd, InputUntouchedAndSshsHashesRederived) {
  GenSpec spec = small_sd15();
  spec.shrink = 2;  // > 1.1 MiB output, so the legacy window lies in the data
  const fs::path input = generate(spec, "in.safetensors");
  const std::string input_hash = sha256_hex(file_bytes(input));
  const fs::path output = dir_ / "out.safetensors";
  resize_file(input, output, sv_fro(0.95));
  EXPECT_EQ(sha256_hex(file_bytes(input)), input_hash);

  const std::vector<std::byte> bytes = file_bytes(output);
  ASSERT_GT(bytes.size(), 0x110000u);
  const std::uint64_t n = header_length(bytes);
  nlohmann::json header = header_json(bytes);
  const std::span<const std::byte> data(bytes.data() + 8 + n, bytes.size() - 8 - n);
  EXPECT_EQ(header["__metadata__"]["sshs_model_hash"], sha256_hex(data));

  nlohmann::json ss_only = header;
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [key, value] : header["__metadata__"].items()) {
    if (key.rfind("ss_", 0) == 0) metadata[key] = value;
  }
  ss_only["__metadata__"] = metadata;
  std::string json = ss_only.dump(-1, ' ', false);
  while ((8 + json.size()) % 8 != 0) json += ' ';
  std::vector<std::byte> serialization(8 + json.size());
  std::memcpy(serialization.data() + 8, json.data(), json.size());
  serialization.insert(serialization.end(), data.begin(), data.end());
  const std::span<const std::byte> window(serialization.data() + 0x100000, 0x10000);
  EXPECT_EQ(header["__metadata__"]["sshs_legacy_hash"], sha256_hex(window).substr(0, 8));
}

TEST_F(ResizeEndToEnd, OutputBytesDoNotDependOnThreadCount) {
  const fs::path input = generate(small_sd15(), "in.safetensors");
  ResizeOptions options = sv_fro(0.9);
  options.threads = 1;
  resize_file(input, dir_ / "one.safetensors", options);
  options.threads = 3;
  resize_file(input, dir_ / "three.safetensors", options);
  EXPECT_EQ(file_bytes(dir_ / "one.safetensors"), file_bytes(dir_ / "three.safetensors"));
}

TEST_F(ResizeEndToEnd, PassThroughTensorsAreByteIdentical) {
  GenSpec spec = small_sd15();
  spec.passthrough = true;
  const fs::path input = generate(spec, "in.safetensors");
  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, sv_fro(0.9));
  ASSERT_FALSE(report.passthrough.empty());
  e2e::expect_passthrough_identical(input, output, report);
}

TEST_F(ResizeEndToEnd, RefusesToReplaceInputOrExistingOutput) {
  const fs::path input = generate(small_sd15(), "in.safetensors");
  const std::string input_hash = sha256_hex(file_bytes(input));
  ResizeOptions options = sv_fro(0.9);
  try {
    resize_file(input, input, options);
    FAIL() << "resizing onto the input must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::same_file);
  }
  options.force = true;  // not even with --force
  EXPECT_THROW(resize_file(input, dir_ / "." / "in.safetensors", options), Error);
  EXPECT_EQ(sha256_hex(file_bytes(input)), input_hash);

  const fs::path output = dir_ / "out.safetensors";
  std::ofstream(output) << "precious";
  options.force = false;
  try {
    resize_file(input, output, options);
    FAIL() << "an existing output must be refused without --force";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::output_exists);
  }
  EXPECT_EQ(fs::file_size(output), 8u);
  options.force = true;
  resize_file(input, output, options);
  EXPECT_GT(fs::file_size(output), 8u);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().extension(), ".safetensors") << "temp file left: " << entry.path();
  }
}

// Fixed N above every module's rank: nothing is upsized; factor bytes stay as they were. Only
// modules with σ₁ ≤ 1e-6 go to rank 1, as in the reference.
TEST_F(ResizeEndToEnd, FixedRankAboveModuleRankKeepsModulesUnchanged) {
  const fs::path input = dir_ / "in.safetensors";
  const testsupport::GenResult generated = testsupport::write_lora(small_sd15(), input, true);
  std::size_t tiny = 0;
  for (const auto& module : generated.manifest) tiny += module.dead || module.zero;
  ASSERT_GT(tiny, 0u);
  const fs::path output = dir_ / "out.safetensors";
  ResizeOptions options;
  options.rank = 1000;
  const ResizeReport report = resize_file(input, output, options);
  EXPECT_EQ(report.resized, tiny);
  EXPECT_EQ(report.unchanged, report.modules.size() - tiny);
  const Reader in(input), out(output);
  for (const ModuleReport& m : report.modules) {
    if (m.outcome != ModuleOutcome::unchanged) continue;
    for (const char* suffix : {".lora_down.weight", ".lora_up.weight", ".alpha"}) {
      const std::string name = m.stem + suffix;
      const TensorInfo* a = in.header().find(name);
      const TensorInfo* b = out.header().find(name);
      ASSERT_TRUE(a != nullptr && b != nullptr) << name;
      EXPECT_TRUE(in.read(*a) == out.read(*b)) << name;
    }
  }
}

// Fixed rank: metadata as the reference writes it (FORMATS.md §4).
TEST_F(ResizeEndToEnd, FixedRankMetadataFollowsReference) {
  GenSpec spec = small_sd15();
  spec.alpha = 7.0;  // scale 7/16: alpha' = 7/16·4 = 1.75 exactly
  const fs::path input = generate(spec, "in.safetensors");
  const std::string old_comment = Reader(input).header().metadata.at("ss_training_comment");
  const fs::path output = dir_ / "out.safetensors";
  ResizeOptions options;
  options.rank = 4;
  options.conv_rank = 2;
  resize_file(input, output, options);
  const Reader written(output);
  const Metadata& metadata = written.header().metadata;
  EXPECT_EQ(metadata.at("ss_network_dim"), "4");
  EXPECT_EQ(metadata.at("ss_training_comment"), "dimension is resized from 16 to 4 (conv: 2); " + old_comment);
  // The last module in name order is a linear one (text encoder): alpha' = 7/16 · 4.
  EXPECT_EQ(metadata.at("ss_network_alpha"), "1.75");
}

// PEFT files carry no alpha tensors and must not gain any; the scale (1) stays what loaders compute.
TEST_F(ResizeEndToEnd, PeftFileGainsNoAlphaTensor) {
  GenSpec spec;
  spec.arch = "flux";
  spec.family = "peft";
  spec.rank = 8;
  spec.shrink = 16;
  spec.metadata = false;
  const fs::path input = generate(spec, "in.safetensors");
  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, sv_fro(0.9));
  const Reader written(output);
  for (const TensorInfo& info : written.header().tensors) {
    EXPECT_EQ(info.name.find("alpha"), std::string::npos) << info.name;
  }
  e2e::expect_deltas_match_report(input, output, report, 0.9, 2e-3);
}


// A module with NaN/Inf in a factor is written back unchanged, counted, and never poisons the others.
TEST_F(ResizeEndToEnd, NonFiniteModuleIsKeptAndCounted) {
  Eigen::MatrixXd up = Eigen::MatrixXd::Random(12, 4);
  Eigen::MatrixXd down = Eigen::MatrixXd::Random(4, 10);
  Eigen::MatrixXd bad_up = up;
  bad_up(3, 1) = std::numeric_limits<double>::quiet_NaN();
  bad_up(5, 2) = std::numeric_limits<double>::infinity();
  const std::vector<testsupport::RawTensor> tensors = {
      testsupport::matrix_tensor("lora_unet_a.lora_up.weight", DType::F16, {12, 4}, up),
      testsupport::matrix_tensor("lora_unet_a.lora_down.weight", DType::F16, {4, 10}, down),
      testsupport::scalar_tensor("lora_unet_a.alpha", DType::F16, 4.0),
      testsupport::matrix_tensor("lora_unet_b.lora_up.weight", DType::F16, {12, 4}, bad_up),
      testsupport::matrix_tensor("lora_unet_b.lora_down.weight", DType::F16, {4, 10}, down),
      testsupport::scalar_tensor("lora_unet_b.alpha", DType::F16, 4.0),
  };
  const ResizeReport report = resize_tensors(tensors, 2);
  EXPECT_EQ(report.nonfinite, 2u);
  ASSERT_EQ(report.modules.size(), 2u);
  EXPECT_EQ(report.modules[0].outcome, ModuleOutcome::resized);
  EXPECT_EQ(report.modules[1].outcome, ModuleOutcome::unchanged);
  const Reader in(dir_ / "in.safetensors"), out(dir_ / "out.safetensors");
  for (const char* name : {"lora_unet_b.lora_up.weight", "lora_unet_b.lora_down.weight", "lora_unet_b.alpha"}) {
    EXPECT_TRUE(in.read(*in.header().find(name)) == out.read(*out.header().find(name))) << name;
  }
  EXPECT_EQ(out.header().find("lora_unet_a.lora_up.weight")->shape, (std::vector<std::uint64_t>{12, 2}));
}

// Rank-deficient factors (two equal up columns, a zero down row: true rank 2 of inner 4), which the
// Grams cannot resolve: the written module is the best rank-2 approximation, i.e. ΔW itself.
TEST_F(ResizeEndToEnd, RankDeficientFactorsGiveTheExactTruncation) {
  Eigen::MatrixXd up = Eigen::MatrixXd::Random(20, 4);
  up.col(3) = up.col(2);
  Eigen::MatrixXd down = Eigen::MatrixXd::Random(4, 30);
  down.row(1).setZero();
  const std::vector<testsupport::RawTensor> tensors = {
      testsupport::matrix_tensor("lora_unet_a.lora_up.weight", DType::F32, {20, 4}, up),
      testsupport::matrix_tensor("lora_unet_a.lora_down.weight", DType::F32, {4, 30}, down),
      testsupport::scalar_tensor("lora_unet_a.alpha", DType::F32, 2.0),
  };
  const ResizeReport report = resize_tensors(tensors, 3);
  ASSERT_EQ(report.modules.size(), 1u);
  EXPECT_EQ(report.modules[0].outcome, ModuleOutcome::resized);

  const Reader out(dir_ / "out.safetensors");
  auto matrix = [&](const char* name, Eigen::Index rows, Eigen::Index cols) {
    const std::vector<double> values = out.read_doubles(*out.header().find(name));
    return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(values.data(), rows, cols).eval();
  };
  const double alpha = out.read_doubles(*out.header().find("lora_unet_a.alpha"))[0];
  const Eigen::MatrixXd written = alpha / 3.0 * matrix("lora_unet_a.lora_up.weight", 20, 3) *
                                  matrix("lora_unet_a.lora_down.weight", 3, 30);
  const Eigen::MatrixXd original = 2.0 / 4.0 * up.cast<float>().cast<double>() * down.cast<float>().cast<double>();
  EXPECT_LT((written - original).norm(), 1e-6 * original.norm());
}

// One file holding modules of three families and kinds — kohya LoRA (SD1.5 UNet), PEFT LoRA (Flux
// transformer, no alpha) and LyCORIS LoKr (Flux, kohya-style stems) — each with its own dtype: every module
// is resized by its own family's rules, as if it were alone.
TEST_F(ResizeEndToEnd, MixedFamiliesKindsAndDtypesInOneFile) {
  std::vector<testsupport::RawTensor> tensors;
  auto take = [&](GenSpec spec, const char* name) {
    spec.shrink = 16;
    spec.rank = 8;
    spec.seed = 3;
    const Reader reader(generate(spec, name));
    for (const TensorInfo& info : reader.header().tensors) {
      tensors.push_back({info.name, info.dtype, info.shape, {}, reader.read(info)});
    }
  };
  GenSpec kohya = small_sd15();
  kohya.dtype = DType::F16;
  kohya.text_encoder = false;
  take(kohya, "kohya.safetensors");
  GenSpec peft;
  peft.arch = "flux";
  peft.family = "peft";
  peft.dtype = DType::BF16;
  take(peft, "peft.safetensors");
  GenSpec lokr;
  lokr.arch = "flux";
  lokr.family = "lycoris";
  lokr.kind = "lokr";
  lokr.dtype = DType::F32;
  take(lokr, "lokr.safetensors");
  const fs::path input = dir_ / "mixed.safetensors";
  testsupport::write_tensors(tensors, {}, input, false, true);

  const fs::path output = dir_ / "out.safetensors";
  const ResizeReport report = resize_file(input, output, sv_fro(0.9));
  std::set<std::string> families;
  for (const ModuleReport& m : report.modules) families.insert(m.family);
  EXPECT_EQ(families, (std::set<std::string>{"kohya", "lycoris", "peft"}));
  EXPECT_GT(e2e::expect_deltas_match_report(input, output, report, 0.9, 3e-3), report.modules.size() / 2);
}

// A LoHa whose face-splitting form (inner r₁·r₂) is narrower than ΔW is resized in factor space; one at
// least as wide is formed densely (MATH.md §4) and says so. Both must give what loaders compute.
TEST_F(ResizeEndToEnd, LohaInFactorSpaceOrDenseByWidth) {
  GenSpec spec;
  spec.arch = "sd15";
  spec.kind = "loha";
  spec.rank = 10;  // r₁·r₂ = 100: at least the 80-wide layers, narrower than the 160- and 320-wide ones
  spec.shrink = 4;
  spec.text_encoder = false;
  spec.seed = 5;
  const fs::path input = generate(spec, "loha.safetensors");
  const fs::path output = dir_ / "out.safetensors";
  ResizeOptions options = sv_fro(0.9);
  options.to_lora = true;
  const ResizeReport report = resize_file(input, output, options);
  std::size_t dense = 0;
  for (const ModuleReport& m : report.modules) dense += m.note.starts_with("dense SVD");
  EXPECT_GT(dense, 0u);
  EXPECT_LT(dense, report.modules.size());
  EXPECT_GT(e2e::expect_deltas_match_report(input, output, report, 0.9, 3e-3), report.modules.size() / 2);
}

}  // namespace
}  // namespace lorakit
