// Faults while `lorakit resize` / `lorakit batch` write: a full disk, a failing disk, a file-size limit,
// SIGINT/SIGTERM and SIGKILL mid-write. The real CLI runs in a child process; write errors come from an
// LD_PRELOAD shim (tests/fault/fault_shim.cpp) and RLIMIT_FSIZE. Each case checks what a user relies
// on: the exit code and message, no partial output, no temp file left (or, after SIGKILL, one that the
// next run removes), and the input's bytes unchanged.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lora_gen.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testutil::ScratchFolder;

constexpr auto kDeadline = std::chrono::seconds(300);  // generous: the machine is shared and may be slow

struct Launch {
  std::vector<std::string> args;         // lorakit's arguments
  std::vector<std::string> environment;  // NAME=VALUE added to the child's environment
  bool with_shim = false;                // LD_PRELOAD the fault shim
  std::optional<rlim_t> file_size_limit; // RLIMIT_FSIZE, with SIGXFSZ ignored (so writes fail with EFBIG)
};

struct Outcome {
  bool exited = false;
  int code = -1;    // exit status, or the signal that ended the child
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string file_sha256(const fs::path& path) {
  const std::string bytes = read_text(path);
  return sha256_hex(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

class Child {
 public:
  Child(const fs::path& folder, const Launch& launch) : folder_(folder) {
    pid_ = ::fork();
    if (pid_ == 0) exec_in_child(launch);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  Outcome wait() {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        ADD_FAILURE() << "lorakit did not finish in time";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    reaped_ = true;
    Outcome outcome;
    outcome.exited = WIFEXITED(status);
    outcome.code = outcome.exited ? WEXITSTATUS(status) : WTERMSIG(status);
    outcome.out = read_text(folder_ / "stdout.txt");
    outcome.err = read_text(folder_ / "stderr.txt");
    return outcome;
  }

 private:
  [[noreturn]] void exec_in_child(const Launch& launch) {
    const fs::path out = folder_ / "stdout.txt";
    const fs::path err = folder_ / "stderr.txt";
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0 || err_fd < 0 || ::chdir(folder_.c_str()) != 0) ::_exit(127);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    for (const std::string& setting : launch.environment) ::putenv(const_cast<char*>(setting.c_str()));
    if (launch.with_shim) {
      ::setenv("LD_PRELOAD", LORAKIT_FAULT_SHIM, 1);
      // In a sanitized build the runtime must otherwise come first in the library list.
      const char* asan = std::getenv("ASAN_OPTIONS");
      ::setenv("ASAN_OPTIONS", (std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
    }
    if (launch.file_size_limit) {
      ::signal(SIGXFSZ, SIG_IGN);  // survives exec: writes past the limit fail with EFBIG instead
      const rlimit limit{*launch.file_size_limit, *launch.file_size_limit};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    std::vector<char*> argv{const_cast<char*>(LORAKIT_CLI)};
    for (const std::string& arg : launch.args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(LORAKIT_CLI, argv.data());
    ::_exit(127);
  }

  fs::path folder_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

Outcome run_cli(const fs::path& folder, const Launch& launch) { return Child(folder, launch).wait(); }

std::vector<std::string> names_in(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (!entry.is_directory()) names.push_back(fs::relative(entry.path(), folder).generic_string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<fs::path> temp_files_in(const fs::path& folder) {
  std::vector<fs::path> temps;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (is_any_temp_name(entry.path().filename().string())) temps.push_back(entry.path());
  }
  return temps;
}

// Polls until `folder` holds a temp file (the child is writing), or the deadline passes.
bool wait_for_temp_file(const fs::path& folder) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(folder) && !temp_files_in(folder).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void make_lora(const fs::path& path, std::uint64_t seed = 1) {
  testsupport::GenSpec spec;
  spec.arch = "sd15";
  spec.rank = 8;
  spec.shrink = 4;
  spec.seed = seed;
  testsupport::write_lora(spec, path, true);
}

const std::vector<std::string> kResize = {"resize", "in.safetensors", "-o", "out.safetensors",
                                          "--method", "sv_fro", "--param", "0.9"};
// The run files: the child's stdout/stderr, and the input.
const std::vector<std::string> kOnlyInput = {"in.safetensors", "stderr.txt", "stdout.txt"};

class CliFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    make_lora(scratch_ / "in.safetensors");
    input_sha_ = file_sha256(scratch_ / "in.safetensors");
  }
  void TearDown() override { fs::remove(hold_); }
  void expect_input_unchanged() { EXPECT_EQ(file_sha256(scratch_ / "in.safetensors"), input_sha_); }

  // Starts `args` with every write past the first byte held until `hold` is removed; returns once the
  // child's temp file exists below `watched` (its stop handlers are installed by then).
  std::unique_ptr<Child> start_held(const std::vector<std::string>& args, const fs::path& watched) {
    std::ofstream(hold_) << "held";
    Launch launch{args, {"LORAKIT_FAULT_AFTER=1", "LORAKIT_FAULT_STALL_WHILE=" + hold_.string()}, true, {}};
    auto child = std::make_unique<Child>(scratch_.path(), launch);
    EXPECT_TRUE(wait_for_temp_file(watched)) << "the child never started writing";
    return child;
  }
  void release() { fs::remove(hold_); }

  ScratchFolder scratch_;
  fs::path hold_ = scratch_.path().string() + ".hold";  // outside the folders the CLI writes to
  std::string input_sha_;
};

TEST_F(CliFaults, DiskFullOrFailingDiskFailsTheJobAndLeavesNothing) {
  for (const char* error : {"ENOSPC", "EIO"}) {
    SCOPED_TRACE(error);
    const Outcome run = run_cli(scratch_.path(), {kResize, {"LORAKIT_FAULT_AFTER=200000",
                                                            std::string("LORAKIT_FAULT_ERRNO=") + error}, true, {}});
    EXPECT_TRUE(run.exited);
    EXPECT_EQ(run.code, 1) << run.err;
    const std::string message = std::string(error) == "ENOSPC" ? "No space left on device" : "Input/output error";
    EXPECT_NE(run.err.find("out.safetensors: write failed: " + message), std::string::npos) << run.err;
    EXPECT_EQ(names_in(scratch_.path()), kOnlyInput);
    expect_input_unchanged();
  }
}

TEST_F(CliFaults, FailingFsyncFailsTheJobAndLeavesNothing) {
  const Outcome run = run_cli(scratch_.path(), {kResize, {"LORAKIT_FAULT_FSYNC=EIO"}, true, {}});
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_NE(run.err.find("out.safetensors: fsync failed: Input/output error"), std::string::npos) << run.err;
  EXPECT_EQ(names_in(scratch_.path()), kOnlyInput);
  expect_input_unchanged();
}

TEST_F(CliFaults, FileSizeLimitFailsTheJobWithEfbigAndLeavesNothing) {
  const Outcome run = run_cli(scratch_.path(), {kResize, {}, false, rlim_t{200000}});
  EXPECT_TRUE(run.exited) << "killed by signal " << run.code;
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_NE(run.err.find("out.safetensors: write failed: File too large"), std::string::npos) << run.err;
  EXPECT_EQ(names_in(scratch_.path()), kOnlyInput);
  expect_input_unchanged();
}

TEST_F(CliFaults, TheShimAloneChangesNothing) {  // so the failures above are the faults' doing
  const Outcome run = run_cli(scratch_.path(), {kResize, {"LORAKIT_FAULT_AFTER=1000000000"}, true, {}});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_NO_THROW(Reader(scratch_ / "out.safetensors"));
  expect_input_unchanged();
}

TEST_F(CliFaults, SignalDuringResizeStopsCleanly) {
  for (const int signal : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal);
    const std::unique_ptr<Child> child = start_held(kResize, scratch_.path());
    ASSERT_EQ(::kill(child->pid(), signal), 0);
    release();
    const Outcome run = child->wait();
    EXPECT_TRUE(run.exited);
    EXPECT_EQ(run.code, 128 + signal) << run.err;
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    EXPECT_NE(run.err.find("in.safetensors: stopped by " + name + " before the work was complete"),
              std::string::npos) << run.err;
    EXPECT_EQ(names_in(scratch_.path()), kOnlyInput);
    expect_input_unchanged();
  }
}

TEST_F(CliFaults, SignalDuringBatchStopsCleanlyAndARerunFinishes) {
  fs::create_directories(scratch_ / "loras");
  fs::rename(scratch_ / "in.safetensors", scratch_ / "loras" / "a.safetensors");
  make_lora(scratch_ / "loras" / "b.safetensors", 2);
  const std::string sha_a = file_sha256(scratch_ / "loras" / "a.safetensors");
  const std::vector<std::string> batch = {"batch", "loras", "-o", "out", "--preset", "med"};
  for (const int signal : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal);
    const std::unique_ptr<Child> child = start_held(batch, scratch_ / "out");
    ASSERT_EQ(::kill(child->pid(), signal), 0);
    release();
    const Outcome run = child->wait();
    EXPECT_TRUE(run.exited);
    EXPECT_EQ(run.code, 128 + signal) << run.err;
    EXPECT_NE(run.out.find(signal == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM"), std::string::npos)
        << run.out;
    EXPECT_TRUE(names_in(scratch_ / "out").empty());  // the file being written is abandoned, b never started
    EXPECT_EQ(file_sha256(scratch_ / "loras" / "a.safetensors"), sha_a);
  }
  const Outcome rerun = run_cli(scratch_.path(), {batch, {}, false, {}});
  EXPECT_EQ(rerun.code, 0) << rerun.err;
  EXPECT_EQ(names_in(scratch_ / "out"), (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
}

TEST_F(CliFaults, SigkillLeavesATempFileThatTheNextResizeRemovesAndReports) {
  const std::unique_ptr<Child> child = start_held(kResize, scratch_.path());
  ASSERT_EQ(::kill(child->pid(), SIGKILL), 0);
  const Outcome killed = child->wait();
  release();
  EXPECT_FALSE(killed.exited);
  const std::vector<fs::path> leftovers = temp_files_in(scratch_.path());
  ASSERT_EQ(leftovers.size(), 1U);
  EXPECT_TRUE(is_temp_name_of(leftovers[0].filename().string(), "out.safetensors"));

  const Outcome rerun = run_cli(scratch_.path(), {kResize, {}, false, {}});
  EXPECT_EQ(rerun.code, 0) << rerun.err;
  EXPECT_NE(rerun.out.find("note: removed ./" + leftovers[0].filename().string() +
                           ", a temporary file left by an interrupted run"), std::string::npos) << rerun.out;
  EXPECT_EQ(names_in(scratch_.path()),
            (std::vector<std::string>{"in.safetensors", "out.safetensors", "stderr.txt", "stdout.txt"}));
  EXPECT_NO_THROW(Reader(scratch_ / "out.safetensors"));
  expect_input_unchanged();
}

}  // namespace
}  // namespace lorakit
