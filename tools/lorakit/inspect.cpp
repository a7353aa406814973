// `lorakit inspect FILE [--json]`: what a LoRA file holds, without changing anything.
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::cli {
namespace {

struct InspectOptions {
  std::string input;
  bool json = false;
};

int run_inspect(const InspectOptions& options) {
  const Reader reader(options.input);
  const Inspection inspection = inspect_file(reader);
  if (options.json) {
    std::cout << inspection_json(inspection) << '\n';
  } else {
    print_inspection(std::cout, inspection);
  }
  return kExitOk;
}

}  // namespace

void setup_inspect(CLI::App& app, Action& action) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* command = app.add_subcommand(
      "inspect", "Show a LoRA file's families, base model, module kinds, ranks, alphas and dtypes");
  command->add_option("file", options->input, "LoRA file (.safetensors)")->required();
  command->add_flag("--json", options->json, "Machine-readable JSON output");
  command->callback([options, &action] { action = [options] { return run_inspect(*options); }; });
}

}  // namespace lorakit::cli
