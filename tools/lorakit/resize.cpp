// `lorakit resize IN -o OUT`: one file, one library call (lorakit::resize_file).
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "lorakit/error.hpp"
#include "lorakit/interrupt.hpp"
#include "lorakit/report.hpp"
#include "lorakit/resize.hpp"
#include "progress.hpp"
#include "resize_flags.hpp"

namespace lorakit::cli {
namespace {

struct ResizeCommandOptions {
  std::string input;
  std::string output;
  ResizeFlags flags;
  bool force = false;
  bool verbose = false;
  bool dry_run = false;
  bool quiet = false;
  std::string json;
  std::optional<std::string> peft_config;
};

void write_json(const std::string& path, const ResizeReport& report) {
  std::ofstream file(path);
  file << report_json(report) << '\n';
  if (!file) throw Error(ErrorCode::io_write, path, "", "cannot write the JSON report");
}

int run_resize(const ResizeCommandOptions& command) {
  ResizeOptions options = to_resize_options(command.flags);
  options.force = command.force;
  if (command.peft_config) options.peft_config = *command.peft_config;
  if (command.input.empty()) throw Error(ErrorCode::invalid_argument, "no input file (IN or --model)");
  if (command.output.empty() && !command.dry_run) {
    throw Error(ErrorCode::invalid_argument, "no output file (-o OUT or --save_to), or use --dry-run");
  }
  ProgressBar bar("resizing", !command.quiet && ProgressBar::stderr_is_terminal());
  install_stop_handlers();  // SIGINT/SIGTERM: stop at the next progress point, temp file removed
  options.progress = [&bar](std::uint64_t done, std::uint64_t total) {
    throw_if_stopped();
    bar.update(done, total);
  };
  ResizeReport report = command.dry_run ? plan_file(command.input, options)
                                        : resize_file(command.input, command.output, options);
  bar.finish();
  if (auto note = device_note(command.flags)) report.notes.push_back(*note);
  // A dry run shows the rank it plans for every module.
  if (!command.quiet) print_report(std::cout, report, command.verbose || command.dry_run);
  if (!command.json.empty()) write_json(command.json, report);
  return kExitOk;
}

}  // namespace

void setup_resize(CLI::App& app, Action& action) {
  auto command = std::make_shared<ResizeCommandOptions>();
  CLI::App* sub = app.add_subcommand("resize", "Resize one LoRA file: choose each module's rank from its exact spectrum");
  sub->add_option("input,--model", command->input, "Input .safetensors LoRA, or a PEFT adapter folder");
  sub->add_option("-o,--output,--save_to", command->output, "Output .safetensors file (a folder for a folder input)");
  sub->add_option("--peft-config", command->peft_config,
                  "PEFT adapter_config.json that scales the input (default: the one beside adapter_model.safetensors); "
                  "its rewrite goes beside the output");
  add_resize_flags(*sub, command->flags);
  sub->add_flag("-f,--force", command->force, "Replace an existing output");
  sub->add_flag("-v,--verbose", command->verbose, "One line per module");
  sub->add_flag("-q,--quiet", command->quiet, "No report on stdout, no progress bar");
  sub->add_flag("-n,--dry-run", command->dry_run,
                "Plan only: every module's rank, the exact output size and the retention; write nothing");
  sub->add_option("--json", command->json, "Also write the full report as JSON to this file");
  sub->callback([command, &action] { action = [command] { return run_resize(*command); }; });
}

}  // namespace lorakit::cli
