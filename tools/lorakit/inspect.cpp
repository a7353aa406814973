// `lorakit inspect FILE`: what a LoRA file holds and what it can become, without changing anything.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/analysis.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::cli {
namespace {

struct InspectOptions {
  std::string input;
  std::optional<std::string> peft_config;
  bool json = false;
  std::optional<std::string> html;
  bool force = false;
  bool header_only = false;
  unsigned threads = 0;
};

int run_inspect(const InspectOptions& options) {
  const AdapterInput input = read_adapter_input(options.input, options.peft_config);
  if (options.header_only) {
    if (options.html) throw Error(ErrorCode::invalid_argument, "--html needs the analysis; drop --header-only");
    const Inspection inspection = inspect_file(Reader(input.weights), input.config());
    if (options.json) {
      std::cout << inspection_json(inspection) << '\n';
    } else {
      print_inspection(std::cout, inspection);
    }
    return kExitOk;
  }
  if (options.html) refuse_existing_output(*options.html, options.force);  // before the analysis reads the file
  const Analysis analysis = analyze_file(input.weights, options.threads, input.config());
  if (options.html) {
    write_page(*options.html, analysis_html(analysis), options.force, input.weights);
  }
  if (options.json) {
    std::cout << analysis_json(analysis) << '\n';
  } else {
    print_analysis(std::cout, analysis);
  }
  return kExitOk;
}

}  // namespace

void setup_inspect(CLI::App& app, Action& action) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* command = app.add_subcommand(
      "inspect", "Show what a LoRA file holds (families, base model, kinds, ranks, alphas, dtypes) and what it can "
                 "become: exact sizes and retention of presets and targets, ranks per block, dead weight");
  command->add_option("file", options->input, "LoRA file (.safetensors), or a PEFT adapter folder")->required();
  command->add_option("--peft-config", options->peft_config,
                      "PEFT adapter_config.json that scales the file "
                      "(default: the one beside adapter_model.safetensors)");
  command->add_flag("--json", options->json, "Machine-readable JSON output");
  command->add_option("--html", options->html,
                      "Also write the analysis as one self-contained HTML page (charts, heat maps, tables)");
  command->add_flag("-f,--force", options->force, "Replace the --html page if it exists");
  command->add_flag("--header-only", options->header_only,
                    "Only what the header and alphas say (fast: no factor is read, no analysis)");
  command->add_option("--threads", options->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4096}));
  command->callback([options, &action] { action = [options] { return run_inspect(*options); }; });
}

}  // namespace lorakit::cli
