// resize_driver: one lorakit::resize_file call with the CLI's resize flags, for timing without the CLI.
// --plan-only runs lorakit::plan_file instead (pass 1: read, decode, spectra, ranks, layout; nothing
// written), so that `resize − plan` is the cost of pass 2 (re-read, apply, encode, write, fsync).
// The last line is machine-readable for bench/run.sh:
//   resize_driver: seconds=S modules=M resized=R input_bytes=I output_bytes=O average_fro=F
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"
#include "lorakit/resize.hpp"

namespace {

struct Options {
  std::string input;
  std::string output;
  std::string method = "sv_fro";
  double param = 0.95;
  std::optional<std::size_t> rank;
  unsigned threads = 0;
  bool force = false;
  bool quiet = false;
  bool plan_only = false;
};

lorakit::ResizeOptions resize_options(const Options& options) {
  lorakit::ResizeOptions resize;
  const auto method = lorakit::parse_rank_method(options.method);
  if (!method)
    throw lorakit::Error(lorakit::ErrorCode::invalid_argument, "unknown --method " + options.method);
  resize.method = *method;
  if (*method != lorakit::RankMethod::fixed) resize.param = options.param;
  resize.rank = options.rank;
  resize.threads = options.threads;
  resize.force = options.force;
  return resize;
}

int run(const Options& options) {
  const lorakit::ResizeOptions resize = resize_options(options);
  if (!options.plan_only && options.output.empty()) {
    throw lorakit::Error(lorakit::ErrorCode::invalid_argument, "no output file (-o OUT), or use --plan-only");
  }
  const lorakit::ResizeReport report = options.plan_only
                                           ? lorakit::plan_file(options.input, resize)
                                           : lorakit::resize_file(options.input, options.output, resize);
  if (!options.quiet) {
    fmt::print("{}: {} modules ({} resized), {} -> {} bytes, average fro retention {:.4f}\n", options.input,
               report.modules.size(), report.resized, report.input_bytes, report.output_bytes,
               report.average_fro);
  }
  fmt::print(
      "resize_driver: seconds={:.4f} modules={} resized={} input_bytes={} output_bytes={} "
      "average_fro={:.6f}\n",
      report.seconds, report.modules.size(), report.resized, report.input_bytes, report.output_bytes,
      report.average_fro);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resize_driver: lorakit::resize_file (or plan_file) with the CLI's resize flags"};
  Options options;
  app.add_option("input", options.input, "input .safetensors LoRA")->required();
  app.add_option("-o,--output", options.output, "output file");
  app.add_option("--method", options.method, "fixed, sv_ratio, sv_fro, sv_cumulative")->capture_default_str();
  app.add_option("--param", options.param, "target of --method")->capture_default_str();
  app.add_option("--rank", options.rank, "fixed rank, or cap for the dynamic methods");
  app.add_option("--threads", options.threads, "worker threads (0 = all cores)")->capture_default_str();
  app.add_flag("-f,--force", options.force, "replace an existing output");
  app.add_flag("-q,--quiet", options.quiet, "only the machine-readable line");
  app.add_flag("--plan-only", options.plan_only, "pass 1 only (lorakit::plan_file): nothing is written");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "resize_driver: error: {}\n", e.what());
    return 1;
  }
}
