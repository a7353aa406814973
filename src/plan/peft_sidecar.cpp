#include "plan/peft_sidecar.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"

namespace lorakit::detail {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kRawPeftPrefix = "base_model.model.";

fs::path folder_output(const fs::path& folder) {
  std::error_code error;
  if (fs::exists(folder, error) && !fs::is_directory(folder, error)) {
    throw Error(ErrorCode::invalid_argument, folder.string(), "",
                "the input is a PEFT adapter folder, so the output must be a folder too");
  }
  return folder / kPeftWeightsName;
}

}  // namespace

ResizePaths resolve_resize_paths(const fs::path& input, const fs::path* output, const ResizeOptions& options) {
  ResizePaths paths;
  AdapterInput read = read_adapter_input(input, options.peft_config);
  paths.input = std::move(read.weights);
  paths.sidecar = std::move(read.sidecar);
  paths.output_folder = paths.input != input && output != nullptr;
  if (output != nullptr) paths.output = paths.output_folder ? folder_output(*output) : *output;
  if (paths.sidecar && paths.output) paths.sidecar_output = paths.output->parent_path() / kPeftConfigName;
  return paths;
}

void check_sidecar_output(const ResizePaths& paths, bool force) {
  if (!paths.sidecar_output) return;
  const fs::path& target = *paths.sidecar_output;
  if (same_path(paths.sidecar->path, target)) {
    throw Error(ErrorCode::same_file, target.string(), "",
                "the rewritten PEFT config would replace the input's own; write the output to another folder");
  }
  refuse_existing_output(target, force);
}

void prepare_output_folder(const ResizePaths& paths) {
  if (!paths.output_folder) return;
  std::error_code error;
  fs::create_directories(paths.output->parent_path(), error);
  if (error) {
    throw Error(ErrorCode::io_write, paths.output->parent_path().string(), "",
                "cannot create folder: " + error.message());
  }
}

void PeftTargets::add(const ModuleReport& module) {
  if (module.outcome == ModuleOutcome::dropped) return;
  ranks[module.stem] = module.new_rank;
  if (module.new_alpha) alphas[module.stem] = *module.new_alpha;
}

void write_peft_sidecar(const PeftConfig& config, const ResizeReport& report, const fs::path& target, bool force) {
  PeftTargets targets;
  for (const ModuleReport& module : report.modules) targets.add(module);
  AtomicFile file(target, force);
  file.write(targets.rewrite(config));
  file.commit();
}

void add_peft_notes(ResizeReport& report, const AdapterModel& model, const ResizePaths& paths) {
  if (model.peft_sidecar) {
    std::string note = fmt::format("PEFT config {} gives the scale of {} modules", paths.sidecar->path.string(),
                                   model.peft_sidecar->modules.size());
    if (paths.sidecar_output) {
      note += fmt::format("; rewritten for the new ranks to {}", paths.sidecar_output->string());
    }
    report.notes.push_back(std::move(note));
    if (paths.output && paths.output->filename() != kPeftWeightsName) {
      report.notes.push_back(fmt::format("PEFT's from_pretrained reads {} from a folder: rename the output to load it",
                                         kPeftWeightsName));
    }
    return;
  }
  const auto unscaled = std::count_if(model.modules.begin(), model.modules.end(), [](const Module& module) {
    return module.alpha_source == AlphaSource::none && module.stem.starts_with(kRawPeftPrefix);
  });
  if (unscaled > 0) {
    report.notes.push_back(fmt::format(
        "no PEFT config (adapter_config.json beside an input named {}, or --peft-config): the scale of {} PEFT "
        "modules is assumed to be 1",
        kPeftWeightsName, unscaled));
  }
}

}  // namespace lorakit::detail
