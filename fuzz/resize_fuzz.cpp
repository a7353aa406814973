// Fuzz target: a whole resize of a tiny file. The input is the file; the options depend on its size
// (fixed rank, each dynamic method, dtype conversion, --to-lora, two threads), so every input meets
// one set deterministically. plan_file and resize_file must succeed or throw lorakit::Error. A
// resized file must be a valid safetensors adapter; a failed resize must leave no file at all.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lorakit;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// tmpfs when there is one: every resize fsyncs its output.
fs::path work_folder() {
  std::error_code error;
  const fs::path base = fs::is_directory("/dev/shm", error) ? fs::path("/dev/shm") : fs::temp_directory_path();
  const fs::path folder = base / ("lorakit-resize-fuzz-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  return folder;
}

ResizeOptions options_for(std::size_t size) {
  ResizeOptions options;
  options.threads = 1;
  switch (size % 5) {
    case 0:
      options.rank = 2;
      break;
    case 1:
      options.method = RankMethod::sv_fro;
      options.param = 0.9;
      break;
    case 2:
      options.method = RankMethod::sv_ratio;
      options.param = 4;
      options.to_lora = true;
      options.dtype = DType::BF16;
      break;
    case 3:
      options.method = RankMethod::sv_cumulative;
      options.param = 0.5;
      options.minimal = true;
      options.threads = 2;
      break;
    default:
      options.rank = 1;
      options.conv_rank = 3;
      options.dtype = DType::F32;
      break;
  }
  options.force = true;
  return options;
}

std::size_t entries_in(const fs::path& folder) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder)) ++count;
  return count;
}

void check_output(const fs::path& output) {
  const Reader reader(output);  // throws Error if the written file is not a valid container
  const AdapterModel model = build_adapter_model(reader.header(), output.string(), [&](const TensorInfo& info) {
    const std::vector<double> values = reader.read_doubles(info);
    if (values.size() != 1) throw Error(ErrorCode::adapter_invalid_alpha, "", info.name, "not one value");
    return values[0];
  });
  check(!model.modules.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path folder = work_folder();
  const fs::path input = folder / "in.safetensors";
  const fs::path output = folder / "out.safetensors";
  std::ofstream(input, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  const ResizeOptions options = options_for(size);
  try {
    plan_file(input, options);
  } catch (const Error&) {
  }
  try {
    resize_file(input, output, options);
    check_output(output);
  } catch (const Error&) {
    // A refused or failed resize writes nothing. (check_output's own errors mean an invalid output.)
    check(!fs::exists(output));
  }
  fs::remove(output);
  check(entries_in(folder) == 1);  // no temp file left behind
  return 0;
}
