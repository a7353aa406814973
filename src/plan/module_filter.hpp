#pragma once
// --include / --exclude / --drop: which modules a resize touches, by regular expressions on their names.
#include <regex>
#include <string_view>
#include <vector>

#include "lorakit/adapter.hpp"
#include "lorakit/resize.hpp"

namespace lorakit::detail {

enum class Selection { resize, exclude, drop };

struct Selected {
  Selection selection = Selection::resize;
  std::string_view note;  // the report's note for a module that is not resized: "--drop", "--exclude", ...
};

class ModuleFilter {
 public:
  // Throws Error(invalid_argument) naming the flag for a pattern that is not a valid ECMAScript regex.
  explicit ModuleFilter(const ResizeOptions& options);
  // By the module's stem: --drop wins over --exclude, which wins over --include.
  Selected select(const Module& module) const;

 private:
  std::vector<std::regex> include_;
  std::vector<std::regex> exclude_;
  std::vector<std::regex> drop_;
};

}  // namespace lorakit::detail
