// `lorakit inspect FILE [--json]`: what a LoRA file holds, without changing anything.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::cli {
namespace {

struct InspectOptions {
  std::string input;
  std::optional<std::string> peft_config;
  bool json = false;
};

int run_inspect(const InspectOptions& options) {
  const std::filesystem::path weights = adapter_weights_path(options.input);
  const Reader reader(weights);
  const std::optional<PeftSidecar> sidecar = find_peft_sidecar(weights, options.peft_config);
  const Inspection inspection = inspect_file(reader, sidecar ? &*sidecar : nullptr);
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
  command->add_option("file", options->input, "LoRA file (.safetensors), or a PEFT adapter folder")->required();
  command->add_option("--peft-config", options->peft_config,
                      "PEFT adapter_config.json that scales the file "
                      "(default: the one beside adapter_model.safetensors)");
  command->add_flag("--json", options->json, "Machine-readable JSON output");
  command->callback([options, &action] { action = [options] { return run_inspect(*options); }; });
}

}  // namespace lorakit::cli
