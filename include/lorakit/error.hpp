#pragma once
// One error type for the whole library: a code per failure mode, a message that names the file and,
// where there is one, the tensor. The CLI catches lorakit::Error once and maps codes to exit status.
#include <stdexcept>
#include <string>
#include <string_view>

namespace lorakit {

enum class ErrorCode {
  // Command line and options.
  invalid_argument,
  // Files.
  io_open,
  io_read,
  io_write,
  output_exists,      // output exists and --force was not given
  same_file,          // output would replace the input
  target_unreachable, // no choice of ranks meets --target-size / --target-ratio / --target-retention
  // safetensors container (FORMATS.md §1), one per rule.
  file_too_short,         // fewer than 8 bytes
  header_too_large,       // N > 100,000,000
  header_beyond_eof,      // 8 + N > file size
  header_invalid_utf8,
  header_invalid_json,
  header_not_object,
  duplicate_key,
  metadata_invalid,       // __metadata__ not an object of string -> string
  tensor_entry_invalid,   // entry not an object, missing/extra/ill-typed field
  unknown_dtype,
  invalid_shape,          // not an array of non-negative integers, or element count overflows
  invalid_offsets,        // not [begin, end] with begin <= end
  size_mismatch,          // end - begin != numel * bits / 8, or not a whole number of bytes
  data_not_contiguous,    // tensors overlap or leave a gap
  data_size_mismatch,     // tensors do not cover the data section exactly
  // Adapters.
  adapter_incomplete,     // a factor of a module is missing (e.g. down without up)
  adapter_shape_mismatch, // factor shapes do not compose
  adapter_dtype_unsupported,
  adapter_invalid_alpha,
  not_an_adapter,         // file holds no adapter module at all
  adapter_format_unsupported,  // a recognised adapter format that no current loader reads (cloneofsimo `unet:N:up`)
  // Numerics.
  numeric_failure,        // decomposition did not converge / non-finite factors where they matter
  // Jobs.
  interrupted,            // stopped on request (SIGINT/SIGTERM, lorakit/interrupt.hpp, or the caller's progress
                          // callback); nothing was written
  internal,
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message);
  // "FILE: tensor 'NAME': MESSAGE" (tensor part omitted when empty).
  Error(ErrorCode code, std::string_view file, std::string_view tensor, std::string_view message);

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace lorakit
