// Fuzz target: module grouping over arbitrary key sets and shapes (every naming family, PEFT metadata
// JSON included). The input is text, one item a line, so that seeds are readable header summaries:
//   NAME DTYPE D0,D1,...   a tensor (no dims after DTYPE: rank 0)
//   @KEY VALUE             a __metadata__ entry (e.g. @lora_adapter_metadata {"r": 4, ...})
// build_adapter_model, inspect_model and rewrite_peft_config must accept the header or throw
// lorakit::Error; every tensor must end up in exactly one module or in the pass-through list, and a
// rewritten PEFT config must be JSON.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/safetensors.hpp"

namespace {

using namespace lorakit;

std::vector<std::uint64_t> parse_dims(std::string_view text) {
  std::vector<std::uint64_t> dims;
  std::istringstream in{std::string(text)};
  std::string dim;
  while (std::getline(in, dim, ',')) {
    dims.push_back(std::strtoull(dim.c_str(), nullptr, 10) % 100'000);  // shapes of any real LoRA, not 2^64
  }
  return dims;
}

// One header line; false when the line is not a tensor or metadata entry, or repeats a tensor name
// (the container parser refuses duplicates): it is ignored.
bool add_line(std::string_view line, Header& header, std::set<std::string>& names, std::uint64_t& offset) {
  if (line.starts_with('@')) {
    const std::size_t space = line.find(' ');
    const std::string key(line.substr(1, space == std::string_view::npos ? line.size() : space - 1));
    header.metadata[key] = space == std::string_view::npos ? "" : std::string(line.substr(space + 1));
    header.has_metadata = true;
    return true;
  }
  std::istringstream words{std::string(line)};
  std::string name, dtype_text, dims;
  words >> name >> dtype_text >> dims;
  const std::optional<DType> dtype = parse_dtype(dtype_text);
  if (name.empty() || !dtype || !names.insert(name).second) return false;
  TensorInfo tensor;
  tensor.name = name;
  tensor.dtype = *dtype;
  tensor.shape = parse_dims(dims);
  const std::uint64_t size = TensorSpec{name, *dtype, tensor.shape}.nbytes();  // throws Error on overflow
  tensor.begin = offset;
  tensor.end = offset += size;
  header.tensors.push_back(std::move(tensor));
  return true;
}

// Alpha / scale values: some ordinary, some a loader must refuse (NaN, Inf) or treat specially (0).
double scalar_for(const TensorInfo& tensor) {
  if (tensor.numel() != 1) throw Error(ErrorCode::adapter_invalid_alpha, "", tensor.name, "not one value");
  static constexpr double kValues[] = {1.0, 8.0, 0.5, 0.0, -4.0, NAN, INFINITY, 1e300};
  return kValues[std::hash<std::string>{}(tensor.name) % std::size(kValues)];
}

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void check_partition(const Header& header, const AdapterModel& model) {
  std::map<const TensorInfo*, int> owners;
  for (const Module& module : model.modules) {
    check(!module.tensors.empty() && !module.weight_shape.empty() && std::isfinite(module.scale));
    for (const auto& [role, tensor] : module.tensors) ++owners[tensor];
  }
  for (const TensorInfo* tensor : model.passthrough) ++owners[tensor];
  check(owners.size() == header.tensors.size());
  for (const TensorInfo& tensor : header.tensors) check(owners[&tensor] == 1);
}

void rewrite_peft(const AdapterModel& model) {
  std::map<std::string, std::uint64_t> ranks;
  std::map<std::string, double> alphas;
  for (const auto& [stem, entry] : model.peft->modules) {
    ranks[stem] = std::max<std::uint64_t>(1, entry.rank / 2);
    alphas[stem] = entry.alpha / 2;
  }
  const std::string json = rewrite_peft_config(*model.peft, ranks, alphas);
  check(nlohmann::json::accept(json));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    Header header;
    std::set<std::string> names;
    std::uint64_t offset = 0;
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      add_line(text.substr(start, end - start), header, names, offset);
      start = end + 1;
    }
    header.build_index();
    const AdapterModel model = build_adapter_model(header, "fuzz-input", scalar_for);
    check_partition(header, model);
    inspect_model(header, model, "fuzz-input", offset);
    if (model.peft) rewrite_peft(model);
  } catch (const Error&) {
  }
  return 0;
}
