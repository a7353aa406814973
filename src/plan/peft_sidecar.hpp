#pragma once
// The files of a resize beyond the two paths it is given: a folder input is the PEFT adapter folder it
// names, and the adapter_config.json that scaled the input is rewritten beside the output, so that
// PEFT's loader (which builds every layer from the config, then requires the tensors to fit) loads it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"

namespace lorakit::detail {

struct ResizePaths {
  std::filesystem::path input;                          // the weights file read
  std::optional<std::filesystem::path> output;          // the weights file written; none to plan only
  bool output_folder = false;                           // created when missing (a folder input's output)
  std::optional<PeftSidecar> sidecar;                   // the adapter_config.json read
  std::optional<std::filesystem::path> sidecar_output;  // its rewrite: adapter_config.json beside the output
};

// A folder input stands for its adapter_model.safetensors, and its output for OUTPUT/adapter_model.safetensors
// (Error(invalid_argument) when OUTPUT exists and is not a folder). The sidecar is options.peft_config,
// else the one beside an input named adapter_model.safetensors (find_peft_sidecar).
ResizePaths resolve_resize_paths(const std::filesystem::path& input, const std::filesystem::path* output,
                                 const ResizeOptions& options);

// Before anything is written: refuses a rewritten config that would replace the input's own
// (Error(same_file)) or an existing file without `force` (Error(output_exists)).
void check_sidecar_output(const ResizePaths& paths, bool force);

// Creates a folder input's output folder (Error(io_write) when that fails).
void prepare_output_folder(const ResizePaths& paths);

// The new ranks and alphas a PEFT config is rewritten for, by module stem (rewrite_peft_config's maps).
struct PeftTargets {
  std::map<std::string, std::uint64_t> ranks;
  std::map<std::string, double> alphas;

  // A dropped module keeps its entry: PEFT refuses rank 0, and tolerates a layer whose tensors are missing.
  void add(const ModuleReport& module);
  std::string rewrite(const PeftConfig& config) const { return rewrite_peft_config(config, ranks, alphas); }
};

// Writes `config` rewritten for the new ranks and alphas of `report` to `target`, atomically.
void write_peft_sidecar(const PeftConfig& config, const ResizeReport& report, const std::filesystem::path& target,
                        bool force);

// Says which adapter_config.json scaled the modules and where its rewrite went, or that the scale of raw
// PEFT modules (`base_model.model.` keys) without any config was assumed to be 1.
void add_peft_notes(ResizeReport& report, const AdapterModel& model, const ResizePaths& paths);

}  // namespace lorakit::detail
