#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "lorakit/error.hpp"

namespace lorakit {
namespace {

TEST(Error, FormatsFileTensorAndMessage) {
  EXPECT_STREQ(Error(ErrorCode::size_mismatch, "a.safetensors", "up", "too small").what(),
               "a.safetensors: tensor 'up': too small");
  EXPECT_STREQ(Error(ErrorCode::io_open, "a.safetensors", "", "missing").what(), "a.safetensors: missing");
  EXPECT_STREQ(Error(ErrorCode::invalid_shape, "", "up", "bad").what(), "tensor 'up': bad");
  EXPECT_STREQ(Error(ErrorCode::internal, "", "", "plain").what(), "plain");
  EXPECT_STREQ(Error(ErrorCode::invalid_argument, "just the message").what(), "just the message");
}

TEST(Error, KeepsItsCodeAndIsARuntimeError) {
  try {
    throw Error(ErrorCode::data_not_contiguous, "f", "t", "m");
  } catch (const std::runtime_error& error) {
    const auto* typed = dynamic_cast<const Error*>(&error);
    ASSERT_NE(typed, nullptr);
    EXPECT_EQ(typed->code(), ErrorCode::data_not_contiguous);
  }
}

TEST(Error, CodeNamesAreTheEnumIdentifiers) {
  const std::vector<std::pair<ErrorCode, const char*>> names = {
      {ErrorCode::invalid_argument, "invalid_argument"},
      {ErrorCode::io_open, "io_open"},
      {ErrorCode::io_read, "io_read"},
      {ErrorCode::io_write, "io_write"},
      {ErrorCode::output_exists, "output_exists"},
      {ErrorCode::same_file, "same_file"},
      {ErrorCode::file_too_short, "file_too_short"},
      {ErrorCode::header_too_large, "header_too_large"},
      {ErrorCode::header_beyond_eof, "header_beyond_eof"},
      {ErrorCode::header_invalid_utf8, "header_invalid_utf8"},
      {ErrorCode::header_invalid_json, "header_invalid_json"},
      {ErrorCode::header_not_object, "header_not_object"},
      {ErrorCode::duplicate_key, "duplicate_key"},
      {ErrorCode::metadata_invalid, "metadata_invalid"},
      {ErrorCode::tensor_entry_invalid, "tensor_entry_invalid"},
      {ErrorCode::unknown_dtype, "unknown_dtype"},
      {ErrorCode::invalid_shape, "invalid_shape"},
      {ErrorCode::invalid_offsets, "invalid_offsets"},
      {ErrorCode::size_mismatch, "size_mismatch"},
      {ErrorCode::data_not_contiguous, "data_not_contiguous"},
      {ErrorCode::data_size_mismatch, "data_size_mismatch"},
      {ErrorCode::adapter_incomplete, "adapter_incomplete"},
      {ErrorCode::adapter_shape_mismatch, "adapter_shape_mismatch"},
      {ErrorCode::adapter_dtype_unsupported, "adapter_dtype_unsupported"},
      {ErrorCode::adapter_invalid_alpha, "adapter_invalid_alpha"},
      {ErrorCode::not_an_adapter, "not_an_adapter"},
      {ErrorCode::numeric_failure, "numeric_failure"},
      {ErrorCode::interrupted, "interrupted"},
      {ErrorCode::internal, "internal"},
  };
  ASSERT_EQ(names.size(), static_cast<std::size_t>(ErrorCode::internal) + 1);
  for (const auto& [code, name] : names) {
    EXPECT_EQ(error_code_name(code), name);
  }
}

}  // namespace
}  // namespace lorakit
