#include <algorithm>
#include <string>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "safetensors/internal.hpp"

namespace lorakit {

std::uint64_t TensorInfo::numel() const {
  const std::optional<std::uint64_t> count = safetensors_detail::checked_numel(shape);
  if (!count) {
    throw Error(ErrorCode::invalid_shape, "", name, "element count of the shape overflows 64 bits");
  }
  return *count;
}

std::uint64_t TensorSpec::nbytes() const {
  const std::optional<std::uint64_t> count = safetensors_detail::checked_numel(shape);
  const std::optional<std::uint64_t> bytes =
      count ? safetensors_detail::checked_nbytes(*count, dtype) : std::nullopt;
  if (!bytes) {
    throw Error(ErrorCode::invalid_argument, "", name,
                "shape does not give a whole number of bytes of " + std::string(dtype_name(dtype)) +
                    " within 64 bits");
  }
  return *bytes;
}

void Header::build_index() {
  index.clear();
  index.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    index.emplace_back(tensors[i].name, i);
  }
  std::sort(index.begin(), index.end());
}

const TensorInfo* Header::find(std::string_view name) const {
  if (index.size() != tensors.size()) {
    const auto found = std::find_if(tensors.begin(), tensors.end(),
                                    [&](const TensorInfo& tensor) { return tensor.name == name; });
    return found == tensors.end() ? nullptr : &*found;
  }
  // Compare through the positions, not the stored views, so a copied Header still finds correctly.
  const auto name_at = [&](const std::pair<std::string_view, std::size_t>& entry) -> std::string_view {
    return tensors[entry.second].name;
  };
  const auto found = std::partition_point(index.begin(), index.end(),
                                          [&](const auto& entry) { return name_at(entry) < name; });
  if (found == index.end() || name_at(*found) != name) {
    return nullptr;
  }
  return &tensors[found->second];
}

}  // namespace lorakit
