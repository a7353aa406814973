#pragma once
// `lorakit inspect`: what a LoRA file holds — naming families, the base model it was trained for,
// module kinds, ranks and alphas, dtypes, and the tensors that are not adapter factors.
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {

struct BaseModelGuess {
  // "SD1.5", "SDXL", "Flux", "SD3", "HunyuanVideo", "Wan", "Z-Image" or "unknown".
  std::string name = "unknown";
  std::string evidence;  // the key / shape signature that decided it, e.g. "UNet cross-attention context 2048"
};

// From module names (any family's spelling) and the shapes of the weights they patch.
BaseModelGuess guess_base_model(const AdapterModel& model);

struct Inspection {
  std::string file;
  std::uint64_t file_size = 0;
  std::size_t tensor_count = 0;
  std::uint64_t tensor_bytes = 0;
  std::vector<std::string> families;  // sorted, unique
  BaseModelGuess base_model;
  std::size_t module_count = 0;
  std::map<std::string, std::size_t> kinds;    // module_kind_name -> modules
  std::size_t conv_modules = 0;                // weight with a kernel (uses the conv rank)
  std::size_t dora_modules = 0;
  std::map<std::uint64_t, std::size_t> ranks;  // Module::rank -> modules
  std::map<double, std::size_t> alphas;        // stored alpha (tensor or PEFT config) -> modules
  std::size_t modules_without_alpha = 0;
  struct DTypeUse {
    std::size_t tensors = 0;
    std::uint64_t bytes = 0;
  };
  std::map<std::string, DTypeUse> dtypes;      // dtype name -> use, over all tensors
  std::vector<std::string> passthrough;        // in header order
  bool peft_config = false;                    // carries `lora_adapter_metadata`
  std::string peft_sidecar;                    // the adapter_config.json that scaled it, or ""
};

Inspection inspect_model(const Header& header, const AdapterModel& model, std::string_view file,
                         std::uint64_t file_size);
// Reads the header and the alpha / scale tensors of `reader`'s file; `sidecar` scales its PEFT modules.
Inspection inspect_file(const Reader& reader, const PeftSidecar* sidecar = nullptr);

void print_inspection(std::ostream& out, const Inspection& inspection);  // aligned text
std::string inspection_json(const Inspection& inspection);              // pretty JSON

}  // namespace lorakit
