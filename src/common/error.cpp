#include "lorakit/error.hpp"

#include <string>
#include <utility>

namespace lorakit {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
#define LORAKIT_ERROR_CODE_NAME(name) \
  case ErrorCode::name: return #name;
    LORAKIT_ERROR_CODE_NAME(invalid_argument)
    LORAKIT_ERROR_CODE_NAME(io_open)
    LORAKIT_ERROR_CODE_NAME(io_read)
    LORAKIT_ERROR_CODE_NAME(io_write)
    LORAKIT_ERROR_CODE_NAME(output_exists)
    LORAKIT_ERROR_CODE_NAME(same_file)
    LORAKIT_ERROR_CODE_NAME(file_too_short)
    LORAKIT_ERROR_CODE_NAME(header_too_large)
    LORAKIT_ERROR_CODE_NAME(header_beyond_eof)
    LORAKIT_ERROR_CODE_NAME(header_invalid_utf8)
    LORAKIT_ERROR_CODE_NAME(header_invalid_json)
    LORAKIT_ERROR_CODE_NAME(header_not_object)
    LORAKIT_ERROR_CODE_NAME(duplicate_key)
    LORAKIT_ERROR_CODE_NAME(metadata_invalid)
    LORAKIT_ERROR_CODE_NAME(tensor_entry_invalid)
    LORAKIT_ERROR_CODE_NAME(unknown_dtype)
    LORAKIT_ERROR_CODE_NAME(invalid_shape)
    LORAKIT_ERROR_CODE_NAME(invalid_offsets)
    LORAKIT_ERROR_CODE_NAME(size_mismatch)
    LORAKIT_ERROR_CODE_NAME(data_not_contiguous)
    LORAKIT_ERROR_CODE_NAME(data_size_mismatch)
    LORAKIT_ERROR_CODE_NAME(adapter_incomplete)
    LORAKIT_ERROR_CODE_NAME(adapter_shape_mismatch)
    LORAKIT_ERROR_CODE_NAME(adapter_dtype_unsupported)
    LORAKIT_ERROR_CODE_NAME(adapter_invalid_alpha)
    LORAKIT_ERROR_CODE_NAME(not_an_adapter)
    LORAKIT_ERROR_CODE_NAME(numeric_failure)
    LORAKIT_ERROR_CODE_NAME(interrupted)
    LORAKIT_ERROR_CODE_NAME(internal)
#undef LORAKIT_ERROR_CODE_NAME
  }
  return "unknown";
}

namespace {

std::string located_message(std::string_view file, std::string_view tensor, std::string_view message) {
  std::string text;
  text.reserve(file.size() + tensor.size() + message.size() + 16);
  if (!file.empty()) {
    text.append(file).append(": ");
  }
  if (!tensor.empty()) {
    text.append("tensor '").append(tensor).append("': ");
  }
  text.append(message);
  return text;
}

}  // namespace

Error::Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}

Error::Error(ErrorCode code, std::string_view file, std::string_view tensor, std::string_view message)
    : std::runtime_error(located_message(file, tensor, message)), code_(code) {}

}  // namespace lorakit
