#include "safetensors/internal.hpp"

namespace lorakit::safetensors_detail {
namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Length of the valid multi-byte sequence starting at text[i] (lead byte >= 0x80), or 0 if invalid.
std::size_t multibyte_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const std::size_t available = text.size() - i;
  const unsigned char lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) {
    return available >= 2 && is_continuation(byte(1)) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (available < 3 || !is_continuation(byte(1)) || !is_continuation(byte(2))) {
      return 0;
    }
    const bool overlong = lead == 0xE0 && byte(1) < 0xA0;
    const bool surrogate = lead == 0xED && byte(1) >= 0xA0;
    return overlong || surrogate ? 0 : 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (available < 4 || !is_continuation(byte(1)) || !is_continuation(byte(2)) ||
        !is_continuation(byte(3))) {
      return 0;
    }
    const bool overlong = lead == 0xF0 && byte(1) < 0x90;
    const bool beyond_unicode = lead == 0xF4 && byte(1) >= 0x90;
    return overlong || beyond_unicode ? 0 : 4;
  }
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t length = multibyte_length(text, i);
    if (length == 0) {
      return false;
    }
    i += length;
  }
  return true;
}

std::optional<std::uint64_t> checked_numel(std::span<const std::uint64_t> shape) {
  std::uint64_t numel = 1;
  for (const std::uint64_t dimension : shape) {
    if (__builtin_mul_overflow(numel, dimension, &numel)) {
      return std::nullopt;
    }
  }
  return numel;
}

std::optional<std::uint64_t> checked_nbytes(std::uint64_t numel, DType dtype) {
  const std::uint64_t bits = dtype_bits(dtype);
  std::uint64_t result = 0;
  if (bits % 8 == 0) {
    if (__builtin_mul_overflow(numel, bits / 8, &result)) {
      return std::nullopt;
    }
    return result;
  }
  if (__builtin_mul_overflow(numel, bits, &result) || result % 8 != 0) {
    return std::nullopt;
  }
  return result / 8;
}

}  // namespace lorakit::safetensors_detail
