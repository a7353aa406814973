// In-memory resizing (resize_bytes / plan_bytes) against resize_file on the same input, and
// cancellation from the progress callback: the job unwinds and leaves no output and no temp file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<std::byte> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

testsupport::GenSpec kohya_sd15() {
  testsupport::GenSpec spec;
  spec.arch = "sd15";
  spec.rank = 16;
  spec.conv = true;
  spec.shrink = 2;  // > 1.1 MiB output: the sshs legacy hash window lies in the data
  spec.seed = 11;
  return spec;
}

ResizeOptions sv_fro(double p, unsigned threads) {
  ResizeOptions options;
  options.method = RankMethod::sv_fro;
  options.param = p;
  options.threads = threads;
  return options;
}

std::vector<fs::path> folder_entries(const fs::path& folder) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(folder)) entries.push_back(entry.path().filename());
  return entries;
}

TEST(ResizeBytes, EqualsTheFileResizeForAnyThreadCount) {
  testutil::ScratchFolder folder;
  const fs::path input = folder / "in.safetensors";
  testsupport::write_lora(kohya_sd15(), input, true);
  const std::vector<std::byte> image = file_bytes(input);
  const ResizeReport on_disk = resize_file(input, folder / "out.safetensors", sv_fro(0.9, 2));
  const std::vector<std::byte> expected = file_bytes(folder / "out.safetensors");
  ASSERT_GT(expected.size(), 0x110000u);
  for (unsigned threads : {1u, 3u}) {
    const ResizedBytes in_memory = resize_bytes(image, sv_fro(0.9, threads), "trainer state");
    EXPECT_EQ(in_memory.bytes, expected) << threads << " threads";
    EXPECT_EQ(in_memory.report.input, "trainer state");
    EXPECT_EQ(in_memory.report.output_bytes, expected.size());
    ASSERT_EQ(in_memory.report.modules.size(), on_disk.modules.size());
    for (std::size_t i = 0; i < on_disk.modules.size(); ++i) {
      EXPECT_EQ(in_memory.report.modules[i].new_rank, on_disk.modules[i].new_rank) << on_disk.modules[i].stem;
    }
  }
  EXPECT_EQ(plan_bytes(image, sv_fro(0.9, 2)).output_bytes, expected.size());
  EXPECT_EQ(folder_entries(folder.path()).size(), 2u);  // in and out only
}

TEST(ResizeBytes, ErrorsNameTheImage) {
  const std::string not_a_file = "abc";
  try {
    resize_bytes(std::as_bytes(std::span(not_a_file)), sv_fro(0.9, 1), "state.safetensors");
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::file_too_short);
    EXPECT_THAT(error.what(), HasSubstr("state.safetensors: "));
  }
}

// Throws from the progress callback once `after` calls were made (pass 1 counts modules, pass 2 tensors).
struct StopAfter {
  std::uint64_t after;
  std::uint64_t calls = 0;
  void operator()(std::uint64_t, std::uint64_t) {
    if (++calls > after) throw Error(ErrorCode::interrupted, "interrupted");
  }
};

TEST(ResizeCancel, ThrowingFromProgressLeavesNothingBehind) {
  testutil::ScratchFolder folder;
  const fs::path input = folder / "in.safetensors";
  testsupport::write_lora(kohya_sd15(), input, true);
  const std::size_t modules = plan_file(input, sv_fro(0.9, 1)).modules.size();
  // Early in pass 1, at its end, and in the middle of pass 2 (the temp file exists then).
  for (std::uint64_t after : {std::uint64_t{1}, std::uint64_t{modules}, std::uint64_t{modules + 20}}) {
    for (unsigned threads : {1u, 2u}) {
      ResizeOptions options = sv_fro(0.9, threads);
      StopAfter stop{after};
      options.progress = [&stop](std::uint64_t done, std::uint64_t total) { stop(done, total); };
      try {
        resize_file(input, folder / "out.safetensors", options);
        FAIL() << "not interrupted after " << after;
      } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::interrupted);
      }
      EXPECT_EQ(stop.calls, after + 1) << "the job went on reporting after the throw";
      EXPECT_EQ(folder_entries(folder.path()), std::vector<fs::path>{"in.safetensors"});
    }
  }
}

}  // namespace
}  // namespace lorakit
