// `lorakit batch INPUT... -o OUTDIR`: resize a collection. The engine is lorakit::batch::run_batch; this
// file only turns flags into its options and prints.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "resize_flags.hpp"

namespace lorakit::cli {
namespace {

struct BatchOptions {
  std::vector<std::string> inputs;
  std::string output_dir;
  bool recursive = false;
  std::string suffix;
  bool in_place = false;
  bool no_backup = false;
  ResizeFlags resize;
  std::string min_retention;
  std::string min_saving;
  std::string on_discard = "skip";
  bool force = false;
  unsigned jobs = 1;
  std::string max_memory;
  bool nice = false;
  std::string report;
  std::string html;
  std::string shard;
};

constexpr const char* kFooter = R"(Presets (rank cap: each module's own rank, or --rank):
  high = --method sv_fro --param 0.95
  med  = --method sv_fro --param 0.92
  low  = --method sv_fro --param 0.88
  An explicit --param, or a --method other than sv_fro, overrides the preset.
  --target-size applies to each file; --target-ratio is the natural form for a collection.

Statuses: ok, exists (output already complete; --force redoes it), skipped (not a .safetensors
file, or a safetensors file without any LoRA module), discarded (below --min-retention or
--min-saving; nothing written unless --on-discard copy), failed (recorded, the batch goes on).
Exit status: 0 all files ok/exists/skipped/discarded, 1 some files failed, 2 usage error,
130/143 interrupted by SIGINT/SIGTERM (run the same command again to finish).

--shard auto reads SLURM_ARRAY_TASK_ID/_COUNT/_MIN/_STEP (Slurm job array), or JOB_COMPLETION_INDEX
with the shard count in LORAKIT_SHARD_COUNT (Kubernetes Indexed Job).)";

batch::Gates gates_of(const BatchOptions& command) {
  batch::Gates gates;
  if (!command.min_retention.empty()) {
    gates.min_retention = batch::parse_retention(command.min_retention);
  }
  if (!command.min_saving.empty()) {
    gates.min_saving = batch::parse_saving(command.min_saving);
  }
  gates.on_discard = *batch::parse_on_discard(command.on_discard);
  return gates;
}

batch::Options engine_options(BatchOptions command) {
  if (command.no_backup && !command.in_place) {
    throw Error(ErrorCode::invalid_argument, "--no-backup applies to --in-place only");
  }
  batch::Options options;
  options.resize = to_resize_options(command.resize);
  options.scan.inputs = command.inputs;
  options.scan.output_dir = command.output_dir;
  options.scan.recursive = command.recursive;
  options.scan.suffix = command.suffix;
  options.scan.in_place = command.in_place;
  options.force = command.force;
  options.jobs = command.jobs;
  if (!command.max_memory.empty()) {
    options.max_memory = batch::parse_memory(command.max_memory);
  }
  options.gates = gates_of(command);
  if (command.shard == "auto") {
    options.shard = batch::shard_from_environment(batch::process_environment());
  } else if (!command.shard.empty()) {
    options.shard = batch::parse_shard(command.shard);
  }
  options.backup = !command.no_backup;
  options.nice = command.nice;
  options.report = command.report;
  options.html = command.html;
  return options;
}

int run_batch_command(const BatchOptions& command) {
  const batch::Options options = engine_options(command);
  if (const std::optional<std::string> note = device_note(command.resize)) {
    fmt::print(stderr, "lorakit: {}\n", *note);
  }
  if (options.shard) {
    fmt::print(stderr, "lorakit: shard {}/{}\n", options.shard->index, options.shard->count);
  }
  batch::install_stop_handlers();
  const std::unique_ptr<batch::Observer> progress = batch::make_progress_printer(stderr, ::isatty(STDERR_FILENO) == 1);
  const batch::Summary summary = batch::run_batch(options, *progress);
  batch::print_summary(stdout, summary);
  return batch::exit_code(summary);
}

}  // namespace

void setup_batch(CLI::App& app, Action& action) {
  auto command = std::make_shared<BatchOptions>();
  CLI::App* sub = app.add_subcommand("batch", "Resize a collection of LoRA files: folders, globs, presets, quality "
                                              "gates, resumable, parallel, sharded across machines");
  sub->footer(kFooter);
  sub->add_option("inputs", command->inputs, "Files, folders or glob patterns")->required();
  sub->add_option("-o,--output-dir", command->output_dir, "Output folder; the input tree is mirrored below it");
  sub->add_flag("-r,--recursive", command->recursive, "Descend into sub-folders of input folders");
  sub->add_option("--suffix", command->suffix, "Add to output names before .safetensors (e.g. _r)");
  sub->add_flag("--in-place", command->in_place,
                "Replace each input after the new file was re-read and checked; keeps NAME.bak");
  sub->add_flag("--no-backup", command->no_backup, "With --in-place: keep no NAME.bak (a re-run resizes again)");
  // The resize flags shared with `lorakit resize` (--preset, --rank, --method, --param, targets, filters, ...).
  add_resize_flags(*sub, command->resize);
  sub->add_option("--min-retention", command->min_retention,
                  "Discard a result whose average Frobenius retention is below X: 0.87, 87 or 87%");
  sub->add_option("--min-saving", command->min_saving, "Discard a result that saves less than Y percent: 20 or 20%");
  sub->add_option("--on-discard", command->on_discard,
                  "skip: write nothing; copy: put the original at the output path (default: skip)")
      ->check(CLI::IsMember({"skip", "copy"}));
  sub->add_flag("-f,--force", command->force, "Redo outputs that already exist");
  sub->add_option("-j,--jobs", command->jobs, "Files resized at once (default 1; --threads then defaults to cores/jobs)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{4096}));
  sub->add_option("--max-memory", command->max_memory,
                  "Start no file while the running files' estimated peak memory would exceed this (e.g. 4G)");
  sub->add_flag("--nice", command->nice, "Lower CPU priority (nice 10) and I/O priority (best-effort 7)");
  sub->add_option("--report", command->report, "One row per file to FILE.jsonl or FILE.csv");
  sub->add_option("--html", command->html,
                  "Overview page FILE.html (one row per file, its curve, a link to its analysis page in FILE_files/)");
  sub->add_option("--shard", command->shard, "I/N: process only slice I of N (stable by relative path), or auto");
  sub->callback([command, &action] { action = [command] { return run_batch_command(*command); }; });
}

}  // namespace lorakit::cli
