#pragma once
// safetensors element types, their sizes, the reference writer's ordering, and float conversions.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lorakit {

enum class DType : std::uint8_t {
  BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, C64,
  F8_E4M3, F8_E5M2, F8_E4M3FNUZ, F8_E5M2FNUZ, F8_E8M0, F6_E3M2, F6_E2M3, F4,
};

std::optional<DType> parse_dtype(std::string_view name);  // "F16" -> DType::F16
std::string_view dtype_name(DType dtype);                  // DType::F16 -> "F16"
unsigned dtype_bits(DType dtype);
// Position in the reference (huggingface safetensors) Dtype enum; its writer orders tensors by this
// rank, descending, then by name (FORMATS.md §1).
int dtype_writer_rank(DType dtype);
// F16, BF16, F32, F64: the types lorakit decodes and encodes for adapter factors.
bool is_float(DType dtype);

// Little-endian bytes <-> floats. `src`/`dst` may be unaligned. Encoding rounds to nearest even and
// keeps NaN (as a quiet NaN, sign kept) and +-Inf; overflow becomes +-Inf as IEEE rounding says.
// Throws Error(adapter_dtype_unsupported) for a non-float dtype.
void decode(DType dtype, std::span<const std::byte> src, std::span<float> dst);
void decode(DType dtype, std::span<const std::byte> src, std::span<double> dst);
void encode(DType dtype, std::span<const float> src, std::span<std::byte> dst);
void encode(DType dtype, std::span<const double> src, std::span<std::byte> dst);

// Scalar helpers (bit patterns), exposed for tests and the writer.
std::uint16_t float_to_f16_bits(float value);
float f16_bits_to_float(std::uint16_t bits);
std::uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(std::uint16_t bits);

}  // namespace lorakit
