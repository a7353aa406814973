#pragma once
// The resize flags shared by `resize` and `batch`, with the reference resizer's spellings as aliases
// so that an existing resize_lora.py command line works with the program name swapped.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lorakit/resize.hpp"

namespace lorakit::cli {

struct ResizeFlags {
  std::optional<std::size_t> rank;
  std::optional<std::size_t> conv_rank;
  std::string method;  // empty: fixed when --rank is given
  std::optional<double> param;
  std::string preset;  // high | med | low
  bool minimal = false;
  std::string target_size;
  std::optional<double> target_ratio;
  std::string target_retention;
  std::string objective;
  bool allow_drop = false;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::vector<std::string> drop;
  std::optional<std::size_t> min_rank;
  std::optional<std::size_t> max_rank;
  std::string dtype = "keep";
  unsigned threads = 0;
  bool to_lora = false;
  bool keep_lycoris = false;
  std::string device;  // accepted for compatibility, ignored
};

void add_resize_flags(CLI::App& command, ResizeFlags& flags);

// Validated options; throws Error(invalid_argument) with a message that names the flag.
ResizeOptions to_resize_options(const ResizeFlags& flags);

// The note printed when --device was given (lorakit always runs on the CPU).
std::optional<std::string> device_note(const ResizeFlags& flags);

}  // namespace lorakit::cli
