// Inputs of a batch: files, folders and globs become items whose outputs mirror the input tree.
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include "lorakit/adapter.hpp"
#include "common/folder_of.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kExtension = ".safetensors";

bool ends_with_ignoring_case(std::string_view text, std::string_view end) {
  if (text.size() < end.size()) {
    return false;
  }
  return std::equal(end.begin(), end.end(), text.end() - static_cast<std::ptrdiff_t>(end.size()),
                    [](char lower, char c) { return std::tolower(static_cast<unsigned char>(c)) == lower; });
}

bool has_safetensors_extension(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.size() > kExtension.size() && ends_with_ignoring_case(name, kExtension);
}

std::string output_name(const std::string& name, const std::string& suffix) {
  if (suffix.empty()) {
    return name;
  }
  const std::size_t stem_size = name.size() - kExtension.size();
  return name.substr(0, stem_size) + suffix + name.substr(stem_size);
}

bool has_glob_characters(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

std::vector<std::string> expand_glob(const std::string& pattern) {
  glob_t matches{};
  const int result = ::glob(pattern.c_str(), GLOB_BRACE | GLOB_TILDE, nullptr, &matches);
  std::vector<std::string> paths;
  if (result == 0) {
    paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  }
  ::globfree(&matches);
  if (result == GLOB_NOMATCH || (result == 0 && paths.empty())) {
    throw Error(ErrorCode::invalid_argument, pattern + ": no file matches this pattern");
  }
  if (result != 0) {
    throw Error(ErrorCode::invalid_argument, pattern + ": cannot expand this pattern");
  }
  return paths;
}

// The folder an output may be written to, resolved so that it can be compared with scanned folders.
std::optional<fs::path> existing_folder(const fs::path& folder) {
  std::error_code error;
  if (folder.empty() || !fs::is_directory(folder, error)) {
    return std::nullopt;
  }
  return fs::canonical(folder, error);
}

class Scanner {
 public:
  explicit Scanner(const ScanOptions& options) : options_(options), output_dir_(existing_folder(options.output_dir)) {}

  void add_input(const std::string& input) {
    std::error_code error;
    const fs::path path(input);
    if (!fs::exists(path, error) && has_glob_characters(input)) {
      for (const std::string& match : expand_glob(input)) {
        add_path(match);
      }
      return;
    }
    add_path(path);
  }

  std::vector<Item> finish() {
    if (items_.empty() && excluded_ > 0) {
      throw Error(ErrorCode::invalid_argument, "every input is inside the output folder " +
                                                   options_.output_dir.string() + " (choose another folder, or --in-place)");
    }
    std::sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) {
      return std::tie(a.relative, a.input) < std::tie(b.relative, b.input);
    });
    mark_conflicts();
    return std::move(items_);
  }

 private:
  void add_path(const fs::path& path) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (!fs::exists(status)) {
      throw Error(ErrorCode::invalid_argument, path.string() + ": no such file or folder");
    }
    if (inside_output_dir(path)) {
      ++excluded_;  // e.g. `loras/*` expanded by the shell while OUTDIR is loras/out
      return;
    }
    if (fs::is_directory(status)) {
      add_folder(path);
    } else if (fs::is_regular_file(status)) {
      add_file(path, path.filename().string());
    } else {
      throw Error(ErrorCode::invalid_argument, path.string() + ": not a file or folder");
    }
  }

  void add_folder(const fs::path& folder) {
    std::error_code error;
    const auto options = fs::directory_options::skip_permission_denied;
    if (options_.recursive) {
      fs::recursive_directory_iterator it(folder, options, error);
      check_listing(folder, error);
      for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
        check_listing(folder, error);
        if (it->is_directory(error) && is_output_dir(it->path())) {
          it.disable_recursion_pending();
        } else {
          add_folder_entry(folder, *it);
        }
      }
    } else {
      fs::directory_iterator it(folder, options, error);
      check_listing(folder, error);
      for (; it != fs::directory_iterator(); it.increment(error)) {
        check_listing(folder, error);
        add_folder_entry(folder, *it);
      }
    }
  }

  static void check_listing(const fs::path& folder, const std::error_code& error) {
    if (error) {
      throw Error(ErrorCode::io_read, folder.string(), "", "cannot list folder: " + error.message());
    }
  }

  void add_folder_entry(const fs::path& folder, const fs::directory_entry& entry) {
    std::error_code error;
    if (entry.is_regular_file(error) && !is_any_temp_name(entry.path().filename().string())) {
      add_file(entry.path(), entry.path().lexically_relative(folder).generic_string());
    }
  }

  // At or below OUTDIR.
  bool inside_output_dir(const fs::path& path) const {
    std::error_code error;
    const fs::path resolved = fs::weakly_canonical(path, error);
    if (!output_dir_ || error) {
      return false;
    }
    const auto [end, ignored] = std::mismatch(output_dir_->begin(), output_dir_->end(), resolved.begin(), resolved.end());
    return end == output_dir_->end();
  }

  bool is_output_dir(const fs::path& folder) const {
    std::error_code error;
    return output_dir_ && fs::equivalent(folder, *output_dir_, error);
  }

  void add_file(const fs::path& path, std::string relative) {
    std::error_code error;
    fs::path identity = fs::weakly_canonical(path, error);
    if (!seen_.insert(error ? path : identity).second) {
      return;  // the same file reached twice (a folder and a file in it, overlapping patterns)
    }
    Item item;
    item.input = path;
    item.is_safetensors = has_safetensors_extension(path);
    if (item.is_safetensors) {
      if (options_.in_place) {
        item.output = path;
      } else {
        const fs::path relative_path(relative);
        item.output = options_.output_dir / relative_path.parent_path() /
                      output_name(relative_path.filename().string(), options_.suffix);
      }
    }
    item.relative = std::move(relative);
    items_.push_back(std::move(item));
  }

  void mark_conflicts() {
    std::map<fs::path, const Item*> owners;
    for (Item& item : items_) {
      if (item.output.empty() || options_.in_place) {
        continue;
      }
      std::error_code error;
      const fs::path output = fs::weakly_canonical(item.output, error);
      if (output == fs::weakly_canonical(item.input, error) || same_file(item.input, item.output)) {
        item.problem = "the output would replace the input";
        continue;
      }
      const auto [owner, inserted] = owners.emplace(output, &item);
      if (!inserted) {
        item.problem = "the output " + item.output.string() + " is also the output of " +
                       owner->second->input.string();
      }
    }
  }

  const ScanOptions& options_;
  std::optional<fs::path> output_dir_;
  std::set<fs::path> seen_;
  std::size_t excluded_ = 0;
  std::vector<Item> items_;
};

}  // namespace

std::vector<Item> scan_inputs(const ScanOptions& options) {
  if (options.inputs.empty()) {
    throw Error(ErrorCode::invalid_argument, "no input given");
  }
  if (options.in_place != options.output_dir.empty()) {
    throw Error(ErrorCode::invalid_argument, "give either an output folder (-o) or --in-place");
  }
  if (options.in_place && !options.suffix.empty()) {
    throw Error(ErrorCode::invalid_argument, "--suffix needs an output folder (-o), not --in-place");
  }
  if (options.suffix.find('/') != std::string::npos) {
    throw Error(ErrorCode::invalid_argument, "--suffix must not contain '/'");
  }
  Scanner scanner(options);
  for (const std::string& input : options.inputs) {
    scanner.add_input(input);
  }
  return scanner.finish();
}

std::vector<fs::path> remove_leftover_temp_files(const std::vector<Item>& items) {
  std::map<fs::path, std::vector<std::string>> names_by_folder;
  for (const Item& item : items) {
    if (!item.output.empty()) {
      std::vector<std::string>& names = names_by_folder[detail::folder_of(item.output)];
      names.push_back(item.output.filename().string());
      // The rewritten PEFT config that travels with a PEFT adapter's output (resize_file).
      if (item.input.filename() == kPeftWeightsName) names.emplace_back(kPeftConfigName);
    }
  }
  std::vector<fs::path> removed;
  for (const auto& [folder, names] : names_by_folder) {
    const std::vector<fs::path> here = remove_stale_temp_files(folder, names);
    removed.insert(removed.end(), here.begin(), here.end());
  }
  return removed;
}

}  // namespace lorakit::batch
