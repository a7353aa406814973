#include "plan/module_filter.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit::detail {
namespace {

std::vector<std::regex> compile(const std::vector<std::string>& patterns, std::string_view flag) {
  std::vector<std::regex> compiled;
  for (const std::string& pattern : patterns) {
    try {
      compiled.emplace_back(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}: '{}' is not a valid regular expression ({})", flag, pattern, e.what()));
    }
  }
  return compiled;
}

bool any_match(const std::vector<std::regex>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::regex& pattern) { return std::regex_search(name, pattern); });
}

}  // namespace

ModuleFilter::ModuleFilter(const ResizeOptions& options)
    : include_(compile(options.include, "--include")),
      exclude_(compile(options.exclude, "--exclude")),
      drop_(compile(options.drop, "--drop")) {}

Selected ModuleFilter::select(const Module& module) const {
  if (any_match(drop_, module.stem)) return {Selection::drop, "--drop"};
  if (any_match(exclude_, module.stem)) return {Selection::exclude, "--exclude"};
  if (!include_.empty() && !any_match(include_, module.stem)) return {Selection::exclude, "not --include"};
  return {};
}

}  // namespace lorakit::detail
