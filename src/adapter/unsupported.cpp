// Adapter formats lorakit recognises only to refuse them by name (see keys.hpp).
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <initializer_list>
#include <string>

#include <fmt/format.h>

#include "adapter/keys.hpp"
#include "lorakit/error.hpp"

namespace lorakit::adapter_detail {
namespace {

bool is_word(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool is_number(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// "COMPONENT:INDEX:FIELD" with FIELD one of `fields`, as cloneofsimo/lora names tensors and ranks.
bool is_cloneofsimo_key(std::string_view key, std::initializer_list<std::string_view> fields) {
  const std::size_t first = key.find(':');
  const std::size_t second = first == std::string_view::npos ? first : key.find(':', first + 1);
  if (second == std::string_view::npos) return false;
  const std::string_view field = key.substr(second + 1);
  return is_word(key.substr(0, first)) && is_number(key.substr(first + 1, second - first - 1)) &&
         std::find(fields.begin(), fields.end(), field) != fields.end();
}

}  // namespace

void reject_unsupported_format(const Header& header, std::string_view file) {
  const auto is_factor = [](const TensorInfo& tensor) { return is_cloneofsimo_key(tensor.name, {"up", "down"}); };
  const auto first = std::find_if(header.tensors.begin(), header.tensors.end(), is_factor);
  if (first == header.tensors.end()) return;
  const auto factors = std::count_if(first, header.tensors.end(), is_factor);
  const bool ranks = std::any_of(header.metadata.begin(), header.metadata.end(),
                                 [](const auto& entry) { return is_cloneofsimo_key(entry.first, {"rank"}); });
  throw Error(ErrorCode::adapter_format_unsupported, file, "",
              fmt::format("is in the early cloneofsimo/lora format ({} tensors named like '{}'{}): its modules are "
                          "numbered in training order, not named by layer, so no current loader (ComfyUI, A1111, "
                          "diffusers) applies it and lorakit cannot resize it",
                          factors, first->name, ranks ? ", ranks in 'NAME:N:rank' metadata" : ""));
}

}  // namespace lorakit::adapter_detail
