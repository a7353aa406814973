// Float conversions for tensor payloads. Bulk work goes through fixed-size, aligned chunk buffers: the
// payload may be unaligned (memcpy in/out), and the inner loops are plain or Eigen-vectorised casts.
#include <Eigen/Core>
#if defined(__F16C__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"

namespace lorakit {
namespace {

constexpr std::size_t kChunk = 4096;

using HalfArray = Eigen::Array<Eigen::half, Eigen::Dynamic, 1>;
using FloatArray = Eigen::Array<float, Eigen::Dynamic, 1>;

void require_float_dtype(DType dtype) {
  if (!is_float(dtype)) {
    throw Error(ErrorCode::adapter_dtype_unsupported,
                "dtype " + std::string(dtype_name(dtype)) + " is not a floating-point type lorakit converts");
  }
}

void require_matching_sizes(DType dtype, std::size_t byte_count, std::size_t element_count) {
  if (byte_count != element_count * (dtype_bits(dtype) / 8)) {
    throw Error(ErrorCode::internal, std::to_string(byte_count) + " bytes cannot hold " +
                                         std::to_string(element_count) + " " +
                                         std::string(dtype_name(dtype)) + " values");
  }
}

// Calls chunk(offset, count) over [0, total) in pieces of at most kChunk elements.
template <class Chunk>
void for_each_chunk(std::size_t total, Chunk&& chunk) {
  for (std::size_t offset = 0; offset < total; offset += kChunk) {
    chunk(offset, std::min(kChunk, total - offset));
  }
}

// ---- 16-bit storage <-> float, `count` <= kChunk elements ----------------------------------------

#if defined(__F16C__)
// Eigen 3.4 turns on its F16C code only under clang; with GCC Eigen::half converts in software, one
// element at a time. The F16C instructions give the same round-to-nearest-even results, 8 at a time.
void f16_to_floats(const std::byte* src, std::size_t count, float* dst) {
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
  }
  for (; i < count; ++i) {
    std::uint16_t bits = 0;
    std::memcpy(&bits, src + 2 * i, sizeof bits);
    dst[i] = f16_bits_to_float(bits);
  }
}

void floats_to_f16(const float* src, std::size_t count, std::byte* dst) {
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), halves);
  }
  for (; i < count; ++i) {
    const std::uint16_t bits = float_to_f16_bits(src[i]);
    std::memcpy(dst + 2 * i, &bits, sizeof bits);
  }
}
#else
void f16_to_floats(const std::byte* src, std::size_t count, float* dst) {
  alignas(64) Eigen::half halves[kChunk];
  std::memcpy(halves, src, count * sizeof(Eigen::half));
  Eigen::Map<FloatArray>(dst, static_cast<Eigen::Index>(count)) =
      Eigen::Map<const HalfArray>(halves, static_cast<Eigen::Index>(count)).cast<float>();
}

void floats_to_f16(const float* src, std::size_t count, std::byte* dst) {
  alignas(64) Eigen::half halves[kChunk];
  Eigen::Map<HalfArray>(halves, static_cast<Eigen::Index>(count)) =
      Eigen::Map<const FloatArray>(src, static_cast<Eigen::Index>(count)).cast<Eigen::half>();
  std::memcpy(dst, halves, count * sizeof(Eigen::half));
}
#endif

void bf16_to_floats(const std::byte* src, std::size_t count, float* dst) {
  alignas(64) std::uint16_t words[kChunk];
  std::memcpy(words, src, count * sizeof(std::uint16_t));
  for (std::size_t i = 0; i < count; ++i) {
    dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(words[i]) << 16);
  }
}

void floats_to_bf16(const float* src, std::size_t count, std::byte* dst) {
  alignas(64) std::uint16_t words[kChunk];
  for (std::size_t i = 0; i < count; ++i) {
    words[i] = float_to_bf16_bits(src[i]);
  }
  std::memcpy(dst, words, count * sizeof(std::uint16_t));
}

// Decodes F16/BF16/F32 (not F64) into floats.
void narrow_storage_to_floats(DType dtype, const std::byte* src, std::size_t count, float* dst) {
  switch (dtype) {
    case DType::F16: f16_to_floats(src, count, dst); return;
    case DType::BF16: bf16_to_floats(src, count, dst); return;
    default: std::memcpy(dst, src, count * sizeof(float)); return;
  }
}

// Encodes floats as F16/BF16/F32 (not F64).
void floats_to_narrow_storage(DType dtype, const float* src, std::size_t count, std::byte* dst) {
  switch (dtype) {
    case DType::F16: floats_to_f16(src, count, dst); return;
    case DType::BF16: floats_to_bf16(src, count, dst); return;
    default: std::memcpy(dst, src, count * sizeof(float)); return;
  }
}

// double -> float rounding to odd: truncate toward zero and set the last bit when inexact. Rounding
// that result to nearest-even at 16 bits equals rounding the double directly (round-to-odd keeps the
// sticky information that a plain double -> float -> 16-bit double rounding would lose).
float round_to_odd_float(double value) {
  const float nearest = static_cast<float>(value);
  const double back = static_cast<double>(nearest);
  std::uint32_t bits = std::bit_cast<std::uint32_t>(nearest);
  const bool inexact = back != value && !std::isnan(value);
  const bool rounded_away = std::fabs(back) > std::fabs(value);
  bits -= (inexact && rounded_away) ? 1u : 0u;
  bits |= inexact ? 1u : 0u;
  return std::bit_cast<float>(bits);
}

}  // namespace

std::uint16_t float_to_f16_bits(float value) {
#if defined(__F16C__)
  return static_cast<std::uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
#else
  return Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(value));
#endif
}

float f16_bits_to_float(std::uint16_t bits) {
#if defined(__F16C__)
  return _cvtsh_ss(bits);
#else
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
#endif
}

std::uint16_t float_to_bf16_bits(float value) {
  return Eigen::numext::bit_cast<std::uint16_t>(Eigen::bfloat16(value));
}

float bf16_bits_to_float(std::uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(bits));
}

void decode(DType dtype, std::span<const std::byte> src, std::span<float> dst) {
  require_float_dtype(dtype);
  require_matching_sizes(dtype, src.size(), dst.size());
  if (dtype != DType::F64) {
    const std::size_t width = dtype_bits(dtype) / 8;
    for_each_chunk(dst.size(), [&](std::size_t offset, std::size_t count) {
      narrow_storage_to_floats(dtype, src.data() + offset * width, count, dst.data() + offset);
    });
    return;
  }
  for_each_chunk(dst.size(), [&](std::size_t offset, std::size_t count) {
    alignas(64) double doubles[kChunk];
    std::memcpy(doubles, src.data() + offset * sizeof(double), count * sizeof(double));
    for (std::size_t i = 0; i < count; ++i) {
      dst[offset + i] = static_cast<float>(doubles[i]);
    }
  });
}

void decode(DType dtype, std::span<const std::byte> src, std::span<double> dst) {
  require_float_dtype(dtype);
  require_matching_sizes(dtype, src.size(), dst.size());
  if (dtype == DType::F64) {
    if (!src.empty()) {
      std::memcpy(dst.data(), src.data(), src.size());
    }
    return;
  }
  const std::size_t width = dtype_bits(dtype) / 8;
  for_each_chunk(dst.size(), [&](std::size_t offset, std::size_t count) {
    alignas(64) float floats[kChunk];
    narrow_storage_to_floats(dtype, src.data() + offset * width, count, floats);
    for (std::size_t i = 0; i < count; ++i) {
      dst[offset + i] = static_cast<double>(floats[i]);
    }
  });
}

void encode(DType dtype, std::span<const float> src, std::span<std::byte> dst) {
  require_float_dtype(dtype);
  require_matching_sizes(dtype, dst.size(), src.size());
  if (dtype != DType::F64) {
    const std::size_t width = dtype_bits(dtype) / 8;
    for_each_chunk(src.size(), [&](std::size_t offset, std::size_t count) {
      floats_to_narrow_storage(dtype, src.data() + offset, count, dst.data() + offset * width);
    });
    return;
  }
  for_each_chunk(src.size(), [&](std::size_t offset, std::size_t count) {
    alignas(64) double doubles[kChunk];
    for (std::size_t i = 0; i < count; ++i) {
      doubles[i] = static_cast<double>(src[offset + i]);
    }
    std::memcpy(dst.data() + offset * sizeof(double), doubles, count * sizeof(double));
  });
}

void encode(DType dtype, std::span<const double> src, std::span<std::byte> dst) {
  require_float_dtype(dtype);
  require_matching_sizes(dtype, dst.size(), src.size());
  if (dtype == DType::F64) {
    if (!dst.empty()) {
      std::memcpy(dst.data(), src.data(), dst.size());
    }
    return;
  }
  const std::size_t width = dtype_bits(dtype) / 8;
  const bool sixteen_bit = dtype != DType::F32;
  for_each_chunk(src.size(), [&](std::size_t offset, std::size_t count) {
    alignas(64) float floats[kChunk];
    for (std::size_t i = 0; i < count; ++i) {
      const double value = src[offset + i];
      floats[i] = sixteen_bit ? round_to_odd_float(value) : static_cast<float>(value);
    }
    floats_to_narrow_storage(dtype, floats, count, dst.data() + offset * width);
  });
}

}  // namespace lorakit
