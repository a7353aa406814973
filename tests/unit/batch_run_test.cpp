// The batch engine end to end on generated LoRA folders: statuses, untouched inputs, valid outputs,
// resuming, interruption (graceful and kill -9), shards, presets, quality gates and in-place runs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "batch_test_util.hpp"
#include "lora_gen.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"

namespace lorakit::batch {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::files_below;
using testing::read_text;
using testing::ScratchFolder;
using testing::write_text;
using testsupport::GenSpec;

std::string sha256_of(const fs::path& path) {
  const std::string bytes = read_text(path);
  return sha256_hex(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
}

// Every tensor of a complete safetensors file can be read back.
void expect_valid_safetensors(const fs::path& path) {
  SCOPED_TRACE(path.string());
  const Reader reader(path);
  EXPECT_FALSE(reader.header().tensors.empty());
  for (const TensorInfo& tensor : reader.header().tensors) {
    EXPECT_EQ(reader.read(tensor).size(), tensor.nbytes());
  }
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool is_temp_name(const std::string& relative) { return is_any_temp_name(fs::path(relative).filename().string()); }

std::vector<std::string> temp_files_below(const fs::path& folder) {
  std::vector<std::string> temps;
  if (fs::exists(folder)) {
    for (const std::string& name : files_below(folder)) {
      if (is_temp_name(name)) {
        temps.push_back(name);
      }
    }
  }
  return temps;
}

class Recorder : public Observer {
 public:
  void finished(const FileResult& result) override { results.push_back(result); }
  std::vector<FileResult> results;
};

ResizeOptions sv_fro(double param) {
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = param;
  options.threads = 1;
  return options;
}

ResizeOptions fixed_rank(std::size_t rank) {
  ResizeOptions options;
  options.rank = rank;
  options.threads = 1;
  return options;
}

testsupport::GenResult generate(const GenSpec& spec, const fs::path& path) {
  fs::create_directories(path.parent_path());
  return testsupport::write_lora(spec, path, true);
}

// A kohya LoRA module with down = the first r rows of the identity and up = its transpose: all r
// singular values are 1, so keeping k of them retains exactly √(k/r) of the Frobenius norm.
void write_flat_spectrum_lora(const fs::path& path, std::size_t rank, std::size_t width) {
  std::vector<double> down(rank * width, 0.0);
  std::vector<double> up(width * rank, 0.0);
  for (std::size_t i = 0; i < rank; ++i) {
    down[i * width + i] = 1.0;
    up[i * rank + i] = 1.0;
  }
  const std::string stem = "lora_unet_mid_block_attentions_0_proj_in";
  fs::create_directories(path.parent_path());
  testsupport::write_tensors({{stem + ".lora_down.weight", DType::F32, {rank, width}, down, {}},
                              {stem + ".lora_up.weight", DType::F32, {width, rank}, up, {}},
                              {stem + ".alpha", DType::F32, {}, {static_cast<double>(rank)}, {}}},
                             {}, path);
}

// in/ kohya/sd15_lora  peft/flux_lora  lyco/sd15_loha  lyco/wan_lokr  (valid LoRAs of several formats)
//     corrupt.safetensors (cut short)  model.safetensors (no adapter)  readme.txt
class BatchRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_stop();
    GenSpec lora;
    lora.arch = "sd15";
    lora.shrink = 16;
    lora.text_encoder = false;
    generate(lora, in() / "kohya" / "sd15_lora.safetensors");
    GenSpec peft;
    peft.arch = "flux";
    peft.family = "peft";
    peft.rank = 8;
    peft.shrink = 32;
    generate(peft, in() / "peft" / "flux_lora.safetensors");
    GenSpec loha;
    loha.kind = "loha";
    loha.rank = 4;
    loha.shrink = 32;
    loha.text_encoder = false;
    generate(loha, in() / "lyco" / "sd15_loha.safetensors");
    GenSpec lokr;
    lokr.arch = "wan14b";
    lokr.family = "lycoris";
    lokr.kind = "lokr";
    lokr.shrink = 32;
    generate(lokr, in() / "lyco" / "wan_lokr.safetensors");
    write_text(in() / "corrupt.safetensors", read_text(in() / "kohya" / "sd15_lora.safetensors").substr(0, 5000));
    testsupport::write_tensors({{"model.weight", DType::F32, {4, 4}, std::vector<double>(16, 0.5), {}}}, {},
                               in() / "model.safetensors");
    write_text(in() / "readme.txt", "not a LoRA\n");
  }
  void TearDown() override { clear_stop(); }

  fs::path in() const { return scratch_ / "in"; }
  fs::path out() const { return scratch_ / "out"; }

  Options options() const {
    Options options;
    options.scan.inputs = {in().string()};
    options.scan.recursive = true;
    options.scan.output_dir = out();
    options.resize = sv_fro(0.9);
    return options;
  }

  std::map<std::string, std::string> input_hashes() const {
    std::map<std::string, std::string> hashes;
    for (const std::string& name : files_below(in())) {
      hashes[name] = sha256_of(in() / name);
    }
    return hashes;
  }

  // Status of each result by its input path relative to in().
  std::map<std::string, Status> statuses(const std::vector<FileResult>& results) const {
    std::map<std::string, Status> by_name;
    for (const FileResult& result : results) {
      by_name[fs::path(result.input).lexically_relative(in()).generic_string()] = result.status;
    }
    return by_name;
  }

  const std::vector<std::string> loras_ = {"kohya/sd15_lora.safetensors", "lyco/sd15_loha.safetensors",
                                           "lyco/wan_lokr.safetensors", "peft/flux_lora.safetensors"};
  ScratchFolder scratch_;
};

TEST_F(BatchRunTest, MixedFolderGivesEachFileItsStatusAndNeverTouchesInputs) {
  const std::map<std::string, std::string> before = input_hashes();
  Options run = options();
  run.report = scratch_ / "report.jsonl";
  Recorder recorder;
  const Summary summary = run_batch(run, recorder);

  EXPECT_EQ(summary.total, 7U);
  EXPECT_EQ(summary.count(Status::ok), 4U);
  EXPECT_EQ(summary.count(Status::skipped), 2U);
  EXPECT_EQ(summary.count(Status::failed), 1U);
  EXPECT_EQ(exit_code(summary), 1);
  const std::map<std::string, Status> expected = {
      {"corrupt.safetensors", Status::failed},         {"kohya/sd15_lora.safetensors", Status::ok},
      {"lyco/sd15_loha.safetensors", Status::ok},      {"lyco/wan_lokr.safetensors", Status::ok},
      {"model.safetensors", Status::skipped},          {"peft/flux_lora.safetensors", Status::ok},
      {"readme.txt", Status::skipped}};
  EXPECT_EQ(statuses(recorder.results), expected);

  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  for (const FileResult& result : recorder.results) {
    SCOPED_TRACE(result.input);
    if (result.status != Status::ok) {
      EXPECT_TRUE(result.output.empty());
      EXPECT_EQ(result.retention, std::nullopt);
      continue;
    }
    expect_valid_safetensors(result.output);
    EXPECT_EQ(result.output_bytes, fs::file_size(result.output));
    EXPECT_EQ(result.input_bytes, fs::file_size(result.input));
    ASSERT_TRUE(result.retention);
    EXPECT_GT(*result.retention, 0.5);
    EXPECT_LE(*result.retention, 1.0);
    ASSERT_TRUE(result.ranks);
    EXPECT_LE(result.ranks->min, result.ranks->median);
    EXPECT_LE(result.ranks->median, static_cast<double>(result.ranks->max));
    bytes_in += result.input_bytes;
    bytes_out += *result.output_bytes;
  }
  EXPECT_EQ(summary.bytes_in, bytes_in);
  EXPECT_EQ(summary.bytes_out, bytes_out);
  EXPECT_LT(bytes_out, bytes_in);
  for (const FileResult& result : recorder.results) {
    const std::string name = fs::path(result.input).filename().string();
    if (name == "corrupt.safetensors") {
      EXPECT_THAT(result.message, HasSubstr((in() / "corrupt.safetensors").string() + ": "));
    } else if (name == "model.safetensors") {
      EXPECT_EQ(result.message, "not a LoRA (no adapter module)");
    } else if (name == "readme.txt") {
      EXPECT_EQ(result.message, "not a .safetensors file");
    }
  }

  EXPECT_EQ(input_hashes(), before);
  EXPECT_EQ(files_below(out()), loras_);  // nothing else: no temp files, no outputs of skipped files

  std::istringstream report(read_text(run.report));
  std::set<std::string> reported;
  for (std::string line; std::getline(report, line);) {
    const nlohmann::json row = nlohmann::json::parse(line);
    const std::string name = fs::path(row["input"].get<std::string>()).lexically_relative(in()).generic_string();
    reported.insert(name);
    EXPECT_EQ(row["status"], status_name(expected.at(name))) << name;
  }
  EXPECT_EQ(reported.size(), 7U);
}

TEST_F(BatchRunTest, CompleteOutputsAreKeptUnlessForcedAndBrokenOnesAreRedone) {
  Recorder first;
  run_batch(options(), first);
  const std::string kept_hash = sha256_of(out() / loras_[0]);

  // A stray file at an output path that is not a complete safetensors file was never finished.
  write_text(out() / loras_[1], read_text(out() / loras_[1]).substr(0, 100));
  Recorder second;
  const Summary resumed = run_batch(options(), second);
  const std::map<std::string, Status> statuses_second = statuses(second.results);
  EXPECT_EQ(statuses_second.at(loras_[0]), Status::exists);
  EXPECT_EQ(statuses_second.at(loras_[1]), Status::ok);
  EXPECT_EQ(statuses_second.at(loras_[2]), Status::exists);
  EXPECT_EQ(statuses_second.at(loras_[3]), Status::exists);
  EXPECT_EQ(resumed.count(Status::exists), 3U);
  EXPECT_EQ(sha256_of(out() / loras_[0]), kept_hash);
  expect_valid_safetensors(out() / loras_[1]);

  Options forced = options();
  forced.force = true;
  Recorder third;
  EXPECT_EQ(run_batch(forced, third).count(Status::ok), 4U);
  EXPECT_EQ(sha256_of(out() / loras_[0]), kept_hash);  // deterministic: the same bytes again
}

TEST_F(BatchRunTest, ParallelRunsWriteTheSameBytesAndTheMemoryBudgetNeverBlocksForever) {
  Recorder serial;
  run_batch(options(), serial);
  std::map<std::string, std::string> serial_hashes;
  for (const std::string& name : loras_) {
    serial_hashes[name] = sha256_of(out() / name);
  }
  Options parallel = options();
  parallel.scan.output_dir = scratch_ / "out-parallel";
  parallel.jobs = 3;
  parallel.resize.threads = 0;  // derived from jobs
  parallel.max_memory = 1;      // nothing fits: files run one at a time, each alone
  Recorder recorder;
  EXPECT_EQ(run_batch(parallel, recorder).count(Status::ok), 4U);
  for (const std::string& name : loras_) {
    EXPECT_EQ(sha256_of(scratch_ / "out-parallel" / name), serial_hashes[name]) << name;
  }
  parallel.max_memory.reset();
  parallel.scan.output_dir = scratch_ / "out-unbounded";
  EXPECT_EQ(run_batch(parallel, recorder).count(Status::ok), 4U);
}

TEST_F(BatchRunTest, EstimatedMemoryGrowsWithThreadsAndLargestTensor) {
  const fs::path file = in() / loras_[0];
  const std::uint64_t size = fs::file_size(file);
  const Reader reader(file);
  std::uint64_t largest = 0;
  for (const TensorInfo& tensor : reader.header().tensors) {
    largest = std::max(largest, tensor.numel());
  }
  ASSERT_LT(size, 64U << 20);  // both the early-factor and the write budget are capped by the file size
  EXPECT_EQ(estimate_peak_memory(file, 1), 2 * size + 32 * largest);
  EXPECT_EQ(estimate_peak_memory(file, 4), 2 * size + 4 * 32 * largest);
  EXPECT_EQ(estimate_peak_memory(in() / "corrupt.safetensors", 4), 5000U);
  // LoHa: hada_w1_a (out, r) enters the face-splitting product r times over.
  const Reader loha(in() / "lyco" / "sd15_loha.safetensors");
  std::uint64_t largest_loha = 0;
  for (const TensorInfo& tensor : loha.header().tensors) {
    const bool hada = tensor.name.find(".hada_") != std::string::npos;
    largest_loha = std::max(largest_loha, hada ? tensor.numel() * 4 : tensor.numel());  // rank 4
  }
  EXPECT_EQ(estimate_peak_memory(in() / "lyco" / "sd15_loha.safetensors", 1),
            2 * fs::file_size(in() / "lyco" / "sd15_loha.safetensors") + 32 * largest_loha);
}

TEST_F(BatchRunTest, ShardsAreDisjointAndTogetherDoEverything) {
  std::multiset<std::string> processed;
  for (std::uint64_t index = 0; index < 3; ++index) {
    Options shard = options();
    shard.shard = Shard{index, 3};
    Recorder recorder;
    const Summary summary = run_batch(shard, recorder);
    EXPECT_EQ(summary.total, recorder.results.size());
    for (const FileResult& result : recorder.results) {
      processed.insert(fs::path(result.input).lexically_relative(in()).generic_string());
      EXPECT_TRUE(result.status != Status::exists) << result.input << " was done by another shard";
    }
  }
  EXPECT_EQ(processed.size(), 7U);
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()).size(), 7U);
  EXPECT_EQ(files_below(out()), loras_);
}

// The preset's sv_fro rule (FORMATS.md §4), computed here from the generator's exact spectra:
// the smallest j with Σ_{i≤j} σ² ≥ p² Σ σ², k = clamp(j + 1) + 1, and no module grows past its rank.
std::size_t expected_sv_fro_rank(const testsupport::GenModule& module, double p) {
  const std::vector<double>& sigma = module.sigma;
  double total = 0.0;
  for (const double s : sigma) {
    total += s * s;
  }
  std::size_t j = sigma.size();
  double running = 0.0;
  for (std::size_t i = 0; i < sigma.size(); ++i) {
    running += sigma[i] * sigma[i];
    if (running / total >= p * p) {
      j = i;
      break;
    }
  }
  std::uint64_t n = module.weight_shape[1];
  for (std::size_t axis = 2; axis < module.weight_shape.size(); ++axis) {
    n *= module.weight_shape[axis];
  }
  n = std::min<std::uint64_t>(n, module.weight_shape[0]);
  const std::size_t clamped = std::max<std::size_t>(1, std::min<std::size_t>(j + 1, n - 1));
  return std::min(clamped + 1, module.rank);
}

// A size target applies to each file of a collection: --target-ratio keeps every output within its
// own input's fraction, and filters and gates work on the targeted plan.
TEST(BatchTargets, RatioAppliesToEachFile) {
  ScratchFolder scratch;
  GenSpec spec;
  spec.arch = "sd15";
  spec.shrink = 16;
  spec.rank = 8;
  generate(spec, scratch / "in" / "a.safetensors");
  spec.arch = "sdxl";
  spec.rank = 16;
  generate(spec, scratch / "in" / "sub" / "b.safetensors");
  Options options;
  options.scan.inputs = {(scratch / "in").string()};
  options.scan.recursive = true;
  options.scan.output_dir = scratch / "out";
  options.resize.target_ratio = 0.3;
  options.resize.exclude = {"^lora_te.*layers_1_self_attn"};
  Recorder recorder;
  ASSERT_EQ(run_batch(options, recorder).count(Status::ok), 2U)
      << recorder.results.at(0).message << " / " << recorder.results.at(1).message;
  for (const FileResult& result : recorder.results) {
    SCOPED_TRACE(result.input);
    ASSERT_TRUE(result.output_bytes.has_value());
    EXPECT_EQ(*result.output_bytes, fs::file_size(result.output));
    EXPECT_LE(*result.output_bytes, static_cast<std::uint64_t>(0.3 * static_cast<double>(result.input_bytes)));
    const Reader in(result.input), out(result.output);
    for (const TensorInfo& info : in.header().tensors) {
      if (!info.name.starts_with("lora_te") || info.name.find("layers_1_self_attn") == std::string::npos) continue;
      const TensorInfo* kept = out.header().find(info.name);
      ASSERT_NE(kept, nullptr) << info.name;
      EXPECT_TRUE(in.read(info) == out.read(*kept)) << info.name << " is excluded: byte-identical";
    }
  }
}

TEST(BatchPresets, EachPresetResizesLikeSvFroWithItsTarget) {
  ScratchFolder scratch;
  GenSpec spec;
  spec.arch = "sd15";
  spec.shrink = 16;
  spec.rank = 8;
  spec.dtype = DType::F32;
  spec.text_encoder = false;
  spec.exact_spectrum = true;
  spec.dead_fraction = 0.0;
  const testsupport::GenResult generated = generate(spec, scratch / "in" / "a.safetensors");
  const std::map<Preset, double> documented = {{Preset::high, 0.95}, {Preset::med, 0.92}, {Preset::low, 0.88}};
  for (const Preset preset : {Preset::high, Preset::med, Preset::low}) {
    SCOPED_TRACE(std::string(preset_name(preset)));
    std::string method;
    std::optional<double> param;
    apply_preset(preset, method, param);
    Options options;
    options.scan.inputs = {(scratch / "in").string()};
    options.scan.output_dir = scratch / std::string(preset_name(preset));
    options.resize = sv_fro(*param);
    ASSERT_EQ(parse_rank_method(method), options.resize.method);
    Recorder recorder;
    ASSERT_EQ(run_batch(options, recorder).count(Status::ok), 1U) << recorder.results.at(0).message;
    const Reader output(options.scan.output_dir / "a.safetensors");
    std::size_t resized = 0;
    for (const testsupport::GenModule& module : generated.manifest) {
      const TensorInfo* down = output.header().find(module.stem + ".lora_down.weight");
      ASSERT_NE(down, nullptr) << module.stem;
      const std::size_t expected = expected_sv_fro_rank(module, documented.at(preset));
      EXPECT_EQ(down->shape[0], expected) << module.stem;
      resized += expected < module.rank ? 1 : 0;
    }
    EXPECT_GT(resized, generated.manifest.size() / 2);  // the fixture does exercise the rule
  }
}

class BatchGatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_flat_spectrum_lora(scratch_ / "in" / "flat.safetensors", 16, 64);
    GenSpec minimal;
    minimal.rank = 1;
    minimal.shrink = 16;
    minimal.text_encoder = false;
    generate(minimal, scratch_ / "in" / "rank1.safetensors");
  }
  Options options(ResizeOptions resize) const {
    Options options;
    options.scan.inputs = {(scratch_ / "in").string()};
    options.scan.output_dir = scratch_ / "out";
    options.resize = resize;
    return options;
  }
  std::map<std::string, FileResult> run(const Options& options) const {
    Recorder recorder;
    run_batch(options, recorder);
    std::map<std::string, FileResult> by_name;
    for (const FileResult& result : recorder.results) {
      by_name[fs::path(result.input).filename().string()] = result;
    }
    return by_name;
  }
  ScratchFolder scratch_;
};

TEST_F(BatchGatesTest, LowRetentionIsDiscardedAndNothingIsWritten) {
  Options gated = options(fixed_rank(4));
  gated.gates.min_retention = parse_retention("87%");
  const std::map<std::string, FileResult> results = run(gated);
  const FileResult& flat = results.at("flat.safetensors");
  EXPECT_EQ(flat.status, Status::discarded);
  ASSERT_TRUE(flat.retention);
  EXPECT_NEAR(*flat.retention, 0.5, 1e-6);  // √(4/16)
  EXPECT_EQ(flat.message, "retention 50.0% below the minimum 87.0%");
  EXPECT_TRUE(flat.output.empty());
  EXPECT_EQ(results.at("rank1.safetensors").status, Status::ok);  // rank 1 keeps everything
  EXPECT_THAT(files_below(scratch_ / "out"), ElementsAre("rank1.safetensors"));

  gated.gates.min_retention = 0.49;
  EXPECT_EQ(run(gated).at("flat.safetensors").status, Status::ok);
}

TEST_F(BatchGatesTest, NoSavingIsDiscardedAndCopyKeepsTheCollectionComplete) {
  Options gated = options(fixed_rank(8));
  gated.gates.min_saving = parse_saving("10");
  gated.gates.on_discard = OnDiscard::copy;
  const std::map<std::string, FileResult> results = run(gated);
  const FileResult& rank1 = results.at("rank1.safetensors");
  EXPECT_EQ(rank1.status, Status::discarded);
  EXPECT_THAT(rank1.message, HasSubstr("below the minimum 10.0%; original copied"));
  EXPECT_EQ(rank1.output, (scratch_ / "out" / "rank1.safetensors").string());
  EXPECT_EQ(sha256_of(scratch_ / "out" / "rank1.safetensors"), sha256_of(scratch_ / "in" / "rank1.safetensors"));
  // flat at rank 8 of 16 halves the factors: a real saving, kept.
  EXPECT_EQ(results.at("flat.safetensors").status, Status::ok);
  EXPECT_THAT(temp_files_below(scratch_ / "out"), IsEmpty());

  // The copy is a complete output: a re-run leaves it alone.
  EXPECT_EQ(run(gated).at("rank1.safetensors").status, Status::exists);
}

// Stops the run (as SIGTERM would) when the first LoRA is done.
class StopAfterFirstOk : public Recorder {
 public:
  void finished(const FileResult& result) override {
    Recorder::finished(result);
    if (result.status == Status::ok) {
      std::raise(SIGTERM);
    }
  }
};

TEST_F(BatchRunTest, SigtermFinishesNothingNewAndTheNextRunCompletes) {
  install_stop_handlers();
  StopAfterFirstOk stopper;
  const Summary stopped = run_batch(options(), stopper);
  EXPECT_EQ(stopped.signal, SIGTERM);
  EXPECT_EQ(exit_code(stopped), 143);
  EXPECT_EQ(stopped.count(Status::ok), 1U);
  EXPECT_LT(stopper.results.size(), stopped.total);
  EXPECT_THAT(temp_files_below(out()), IsEmpty());

  clear_stop();
  Recorder rest;
  const Summary finished = run_batch(options(), rest);
  EXPECT_EQ(finished.count(Status::exists), 1U);
  EXPECT_EQ(finished.count(Status::ok), 3U);
  EXPECT_EQ(files_below(out()), loras_);
}

// Requests a stop while a LoRA is being resized: that file is abandoned at its next progress report.
class StopMidFile : public Recorder {
 public:
  void progress(std::size_t, double) override { request_stop(SIGINT); }
};

TEST_F(BatchRunTest, InterruptedFileLeavesNoOutputAndNoTemporaryFile) {
  StopMidFile stopper;
  const Summary stopped = run_batch(options(), stopper);
  EXPECT_EQ(stopped.signal, SIGINT);
  EXPECT_EQ(exit_code(stopped), 130);
  ASSERT_FALSE(stopper.results.empty());
  EXPECT_EQ(stopper.results.back().status, Status::interrupted);
  EXPECT_EQ(stopped.count(Status::ok), 0U);
  EXPECT_THAT(temp_files_below(out()), IsEmpty());
  EXPECT_THAT(files_below(out()), IsEmpty());
}

// In a child process: after the first LoRA is written, stall inside the next file's write (its
// temporary file exists) so that the parent can kill -9 it there.
[[noreturn]] void run_and_stall(const Options& options, const fs::path& out) {
  class Stall : public Observer {
   public:
    explicit Stall(fs::path out) : out_(std::move(out)) {}
    void finished(const FileResult& result) override { written_ += result.status == Status::ok ? 1 : 0; }
    void progress(std::size_t, double) override {
      while (written_ > 0 && !temp_files_below(out_).empty()) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }

   private:
    fs::path out_;
    int written_ = 0;
  };
  try {
    Stall stall(out);
    run_batch(options, stall);
  } catch (...) {
  }
  ::_exit(0);
}

TEST_F(BatchRunTest, KilledRunLeavesNoPartialOutputAndTheRerunCompletes) {
  const Options run = options();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    run_and_stall(run, out());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool stalled = false;
  while (!stalled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stalled = fs::exists(out()) && !temp_files_below(out()).empty() &&
              std::any_of(loras_.begin(), loras_.end(), [&](const std::string& name) { return fs::exists(out() / name); });
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(stalled) << "the child never reached the middle of its second LoRA";
  ASSERT_TRUE(WIFSIGNALED(status));
  const std::vector<std::string> leftovers = temp_files_below(out());
  ASSERT_FALSE(leftovers.empty());
  for (const std::string& name : files_below(out())) {
    if (!is_temp_name(name)) {
      expect_valid_safetensors(out() / name);  // what has its final name is complete
    }
  }

  Recorder rerun;
  const Summary summary = run_batch(run, rerun);
  EXPECT_GE(summary.count(Status::exists), 1U);
  EXPECT_EQ(summary.count(Status::ok) + summary.count(Status::exists), 4U);
  EXPECT_EQ(files_below(out()), loras_);  // the leftovers are gone
  for (const std::string& name : loras_) {
    expect_valid_safetensors(out() / name);
  }
}

TEST_F(BatchRunTest, InPlaceReplacesCheckedResultsAndKeepsBackups) {
  const std::map<std::string, std::string> before = input_hashes();
  Options in_place = options();
  in_place.scan.output_dir.clear();
  in_place.scan.in_place = true;
  Recorder recorder;
  const Summary summary = run_batch(in_place, recorder);
  EXPECT_EQ(summary.count(Status::ok), 4U);
  EXPECT_EQ(summary.count(Status::failed), 1U);
  for (const std::string& name : loras_) {
    SCOPED_TRACE(name);
    EXPECT_EQ(sha256_of(in() / (name + ".bak")), before.at(name));
    EXPECT_NE(sha256_of(in() / name), before.at(name));
    expect_valid_safetensors(in() / name);
  }
  for (const char* untouched : {"corrupt.safetensors", "model.safetensors", "readme.txt"}) {
    EXPECT_EQ(sha256_of(in() / untouched), before.at(untouched));
    EXPECT_FALSE(fs::exists(in() / (std::string(untouched) + ".bak")));
  }
  EXPECT_THAT(temp_files_below(in()), IsEmpty());

  const std::string resized = sha256_of(in() / loras_[0]);
  Recorder again;
  const Summary second = run_batch(in_place, again);
  EXPECT_EQ(second.count(Status::exists), 4U);  // NAME.bak says it was done: never resized twice
  EXPECT_EQ(second.count(Status::skipped), 2U + 4U);  // the .bak files themselves are not LoRA inputs
  EXPECT_EQ(sha256_of(in() / loras_[0]), resized);
}

TEST_F(BatchRunTest, InPlaceWithoutBackup) {
  const std::map<std::string, std::string> before = input_hashes();
  Options in_place = options();
  in_place.scan.output_dir.clear();
  in_place.scan.in_place = true;
  in_place.backup = false;
  in_place.scan.inputs = {(in() / "kohya").string()};
  fs::permissions(in() / loras_[0], fs::perms::owner_read | fs::perms::owner_write);
  Recorder recorder;
  EXPECT_EQ(run_batch(in_place, recorder).count(Status::ok), 1U);
  EXPECT_EQ(fs::status(in() / loras_[0]).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THAT(files_below(in() / "kohya"), ElementsAre("sd15_lora.safetensors"));
  EXPECT_NE(sha256_of(in() / loras_[0]), before.at(loras_[0]));
  expect_valid_safetensors(in() / loras_[0]);
}

TEST_F(BatchRunTest, HtmlOverviewHasARowPerFileAndAPagePerLora) {
  const std::map<std::string, std::string> before = input_hashes();
  Options run = options();
  run.html = scratch_ / "pages" / "overview.html";
  fs::create_directories(run.html.parent_path());
  Recorder recorder;
  run_batch(run, recorder);
  EXPECT_EQ(input_hashes(), before);
  std::vector<std::string> pages;
  for (const std::string& lora : loras_) pages.push_back("overview_files/" + lora + ".html");
  pages.insert(pages.begin(), "overview.html");
  EXPECT_EQ(files_below(run.html.parent_path()), pages);  // no page for failed or skipped files, no temp files
  const std::string overview = read_text(run.html);
  for (const std::string& lora : loras_) {
    EXPECT_THAT(overview, HasSubstr("<a href=\"overview_files/" + lora + ".html\">" + lora + "</a>"));
    EXPECT_THAT(read_text(run.html.parent_path() / "overview_files" / (lora + ".html")), HasSubstr("id=\"plot-mean\""));
  }
  for (const char* other : {"corrupt.safetensors</td>", "model.safetensors</td>", "readme.txt</td>"}) {
    EXPECT_THAT(overview, HasSubstr(other));
  }
  EXPECT_THAT(overview, HasSubstr("<td class=\"status-failed\">failed</td>"));
  EXPECT_EQ(count_of(overview, "<svg id=\"spark-"), loras_.size());  // a curve for each LoRA

  // A second run replaces both, like the report.
  run_batch(run, recorder);
  EXPECT_EQ(files_below(run.html.parent_path()), pages);
}

TEST_F(BatchRunTest, UsageErrorsComeBeforeAnyFileIsTouched) {
  Options bad_report = options();
  bad_report.report = scratch_ / "report.txt";
  Recorder recorder;
  try {
    run_batch(bad_report, recorder);
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
  }
  Options no_jobs = options();
  no_jobs.jobs = 0;
  EXPECT_THROW(run_batch(no_jobs, recorder), Error);
  Options missing = options();
  missing.scan.inputs.push_back((scratch_ / "nowhere").string());
  EXPECT_THROW(run_batch(missing, recorder), Error);
  Options not_html = options();
  not_html.html = scratch_ / "overview.txt";
  EXPECT_THROW(run_batch(not_html, recorder), Error);
  Options no_folder = options();
  no_folder.html = scratch_ / "nowhere" / "overview.html";
  EXPECT_THROW(run_batch(no_folder, recorder), Error);
  EXPECT_FALSE(fs::exists(out()));
  EXPECT_TRUE(recorder.results.empty());
}

}  // namespace
}  // namespace lorakit::batch
