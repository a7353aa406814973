#pragma once
// Helpers shared by the safetensors reader and writer.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "lorakit/dtype.hpp"

namespace lorakit::safetensors_detail {

// Checks the 8-byte length prefix against the file size (file_too_short, header_too_large,
// header_beyond_eof) and returns N. `first_bytes` holds at least min(8, file_size) bytes.
std::uint64_t validated_header_length(std::span<const std::byte> first_bytes, std::uint64_t file_size,
                                      std::string_view file);

// Strict UTF-8 (as Rust's str::from_utf8): no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text);

// Product of the dimensions (1 for rank 0); nullopt when it overflows u64.
std::optional<std::uint64_t> checked_numel(std::span<const std::uint64_t> shape);

// numel * bits / 8; nullopt when it overflows or is not a whole number of bytes.
std::optional<std::uint64_t> checked_nbytes(std::uint64_t numel, DType dtype);

}  // namespace lorakit::safetensors_detail
