// PEFT adapter folders: adapter_model.safetensors and the adapter_config.json that scales it.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"

namespace lorakit {

PeftSidecar read_peft_sidecar(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::io_open, path.string(), "",
                std::string("cannot open the PEFT config: ") + std::strerror(errno));
  }
  PeftSidecar sidecar{path, std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())};
  if (in.bad()) throw Error(ErrorCode::io_read, path.string(), "", "cannot read the PEFT config");
  return sidecar;
}

std::optional<std::filesystem::path> peft_sidecar_path(const std::filesystem::path& adapter) {
  if (adapter.filename() != kPeftWeightsName) return std::nullopt;
  std::filesystem::path beside = adapter.parent_path() / kPeftConfigName;
  std::error_code error;
  if (!std::filesystem::is_regular_file(beside, error)) return std::nullopt;
  return beside;
}

std::optional<PeftSidecar> find_peft_sidecar(const std::filesystem::path& adapter,
                                             const std::optional<std::filesystem::path>& given) {
  if (given) return read_peft_sidecar(*given);
  const std::optional<std::filesystem::path> beside = peft_sidecar_path(adapter);
  if (!beside) return std::nullopt;
  return read_peft_sidecar(*beside);
}

std::filesystem::path adapter_weights_path(const std::filesystem::path& input) {
  std::error_code error;
  if (!std::filesystem::is_directory(input, error)) return input;
  const std::filesystem::path weights = input / kPeftWeightsName;
  if (!std::filesystem::is_regular_file(weights, error)) {
    throw Error(ErrorCode::io_open, input.string(), "",
                "is a folder without adapter_model.safetensors (a folder input must be a PEFT adapter folder)");
  }
  return weights;
}

AdapterInput read_adapter_input(const std::filesystem::path& input,
                                const std::optional<std::filesystem::path>& peft_config) {
  AdapterInput read{adapter_weights_path(input), std::nullopt};
  read.sidecar = find_peft_sidecar(read.weights, peft_config);
  return read;
}

}  // namespace lorakit
