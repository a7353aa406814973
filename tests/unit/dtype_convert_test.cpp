// Conversions are checked against reference codecs written here with integer arithmetic only.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"

namespace lorakit {
namespace {

// A binary16-like format: 1 sign bit, `exponent_bits`, `mantissa_bits`, IEEE semantics.
struct Format {
  int exponent_bits;
  int mantissa_bits;
  int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  int min_exponent() const { return 1 - bias(); }
  std::uint16_t infinity() const {
    return static_cast<std::uint16_t>(((1 << exponent_bits) - 1) << mantissa_bits);
  }
};
constexpr Format kHalf{5, 10};
constexpr Format kBrain{8, 7};

// Reference decoder: sign * mantissa * 2^exponent, built with ldexp from the bit fields.
double reference_decode(Format format, std::uint16_t bits) {
  const bool negative = (bits >> 15) != 0;
  const int exponent_field = (bits >> format.mantissa_bits) & ((1 << format.exponent_bits) - 1);
  const int mantissa = bits & ((1 << format.mantissa_bits) - 1);
  double magnitude = 0;
  if (exponent_field == (1 << format.exponent_bits) - 1) {
    magnitude =
        mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else if (exponent_field == 0) {
    magnitude = std::ldexp(mantissa, format.min_exponent() - format.mantissa_bits);
  } else {
    magnitude = std::ldexp(mantissa + (1 << format.mantissa_bits),
                           exponent_field - format.bias() - format.mantissa_bits);
  }
  return negative ? -magnitude : magnitude;
}

// Reference encoder for finite values and infinities: value = M * 2^E exactly (M, E integers), then
// M is shifted to the target quantum and rounded to nearest, ties to even, with integer arithmetic.
std::uint16_t reference_encode(Format format, double value) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 63) << 15);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  std::uint64_t significand = bits & ((std::uint64_t{1} << 52) - 1);
  if (biased == 0x7FF) {
    return static_cast<std::uint16_t>(sign | format.infinity());
  }
  int exponent = -1074;
  if (biased != 0) {
    significand |= std::uint64_t{1} << 52;
    exponent = biased - 1075;
  }
  if (significand == 0) {
    return sign;
  }
  const int log2_value = exponent + 63 - std::countl_zero(significand);
  const int scale = std::max(log2_value, format.min_exponent());
  const int shift = scale - format.mantissa_bits - exponent;
  std::uint64_t quanta = 0;
  if (shift <= 0) {
    quanta = significand << -shift;
  } else if (shift < 64) {
    quanta = significand >> shift;
    const std::uint64_t remainder = significand & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t halfway = std::uint64_t{1} << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (quanta & 1) != 0)) {
      ++quanta;
    }
  }
  const std::int64_t encoded = (std::int64_t{scale + format.bias()} << format.mantissa_bits) +
                               static_cast<std::int64_t>(quanta) - (std::int64_t{1} << format.mantissa_bits);
  return static_cast<std::uint16_t>(sign | std::min<std::int64_t>(encoded, format.infinity()));
}

bool is_nan_bits(Format format, std::uint16_t bits) { return (bits & 0x7FFF) > format.infinity(); }

bool is_quiet_nan_bits(Format format, std::uint16_t bits) {
  return is_nan_bits(format, bits) && (bits & (1u << (format.mantissa_bits - 1))) != 0;
}

std::uint32_t float_bits(float value) { return std::bit_cast<std::uint32_t>(value); }

TEST(ReferenceCodec, SanityOfTheReferenceItself) {
  EXPECT_EQ(reference_encode(kHalf, 1.0), 0x3C00);
  EXPECT_EQ(reference_encode(kHalf, -2.0), 0xC000);
  EXPECT_EQ(reference_encode(kHalf, 65504.0), 0x7BFF);
  EXPECT_EQ(reference_encode(kHalf, std::ldexp(1.0, -24)), 0x0001);
  EXPECT_EQ(reference_decode(kHalf, 0x3555), 0.333251953125);
  EXPECT_EQ(reference_encode(kBrain, 1.0), 0x3F80);
  EXPECT_EQ(reference_encode(kBrain, 3.140625), 0x4049);
  EXPECT_EQ(reference_decode(kBrain, 0x0001), std::ldexp(1.0, -133));
}

// ---- fp16 ----------------------------------------------------------------------------------------

TEST(F16, DecodesAllBitPatterns) {
  for (std::uint32_t i = 0; i <= 0xFFFF; ++i) {
    const auto bits = static_cast<std::uint16_t>(i);
    const float decoded = f16_bits_to_float(bits);
    const double expected = reference_decode(kHalf, bits);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(decoded)) << std::hex << i;
      ASSERT_EQ(std::signbit(decoded), (i >> 15) != 0) << std::hex << i;
      // The payload's low 9 bits survive (the quiet bit may be set on the way).
      ASSERT_EQ((float_bits(decoded) >> 13) & 0x1FF, i & 0x1FF) << std::hex << i;
    } else {
      ASSERT_EQ(float_bits(decoded), float_bits(static_cast<float>(expected))) << std::hex << i;
    }
  }
}

TEST(F16, EveryValueRoundTripsThroughFloat) {
  for (std::uint32_t i = 0; i <= 0xFFFF; ++i) {
    const auto bits = static_cast<std::uint16_t>(i);
    if (is_nan_bits(kHalf, bits)) {
      continue;
    }
    ASSERT_EQ(float_to_f16_bits(f16_bits_to_float(bits)), bits) << std::hex << i;
  }
}

// Between each pair of neighbours (including 0 and the smallest subnormal, and 65504 and the overflow
// threshold 65536): the exact midpoint goes to the even one, the next floats either side go to the nearer.
TEST(F16, RoundsMidpointsToEvenAndNeighboursToNearest) {
  for (std::uint32_t i = 0; i < 0x7C00; ++i) {
    const double low = reference_decode(kHalf, static_cast<std::uint16_t>(i));
    const double high =
        i + 1 == 0x7C00 ? 65536.0 : reference_decode(kHalf, static_cast<std::uint16_t>(i + 1));
    const auto midpoint = static_cast<float>((low + high) / 2);
    ASSERT_EQ(static_cast<double>(midpoint), (low + high) / 2) << "midpoint must be exact in float";
    for (const float sign : {1.0f, -1.0f}) {
      const float value = sign * midpoint;
      const std::uint16_t sign_bit = sign < 0 ? 0x8000 : 0;
      const std::uint16_t even =
          (i & 1) == 0 ? static_cast<std::uint16_t>(i) : static_cast<std::uint16_t>(i + 1);
      ASSERT_EQ(float_to_f16_bits(value), sign_bit | even) << std::hex << i;
      const float above = std::nextafter(value, sign * std::numeric_limits<float>::infinity());
      const float below = std::nextafter(value, 0.0f);
      ASSERT_EQ(float_to_f16_bits(above), sign_bit | (i + 1)) << std::hex << i;
      ASSERT_EQ(float_to_f16_bits(below), sign_bit | i) << std::hex << i;
    }
  }
}

TEST(F16, SpecialValues) {
  EXPECT_EQ(float_to_f16_bits(0.0f), 0x0000);
  EXPECT_EQ(float_to_f16_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000);     // tie with zero: to even
  EXPECT_EQ(float_to_f16_bits(std::ldexp(3.0f, -26)), 0x0001);     // 0.75 quantum
  EXPECT_EQ(float_to_f16_bits(std::ldexp(3.0f, -25)), 0x0002);     // tie 1.5 quanta: to even (2)
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1023.5f, -24)), 0x0400);  // tie at the subnormal top: up to even
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1.0f, -40)), 0x0000);     // far below: underflow to zero
  EXPECT_EQ(float_to_f16_bits(-std::ldexp(1.0f, -40)), 0x8000);
  EXPECT_EQ(float_to_f16_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16_bits(65519.99f), 0x7BFF);
  EXPECT_EQ(float_to_f16_bits(65520.0f), 0x7C00);  // overflow threshold ties up to Inf
  EXPECT_EQ(float_to_f16_bits(1e10f), 0x7C00);
  EXPECT_EQ(float_to_f16_bits(-1e10f), 0xFC00);
  EXPECT_EQ(float_to_f16_bits(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(float_to_f16_bits(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_f16_bits(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(float_to_f16_bits(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(F16, NanStaysQuietNanWithItsSign) {
  const std::vector<std::uint32_t> nans = {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,
                                           0x7FFFFFFF, 0xFFFFFFFF, 0x7FA00000, 0xFFD55555};
  for (const std::uint32_t bits : nans) {
    const std::uint16_t half = float_to_f16_bits(std::bit_cast<float>(bits));
    EXPECT_TRUE(is_quiet_nan_bits(kHalf, half)) << std::hex << bits << " -> " << half;
    EXPECT_EQ(half >> 15, bits >> 31) << std::hex << bits;
  }
}

TEST(F16, RandomFloatsMatchTheReference) {
  std::mt19937 random(20240611);
  for (int i = 0; i < 4'000'000; ++i) {
    const float value = std::bit_cast<float>(static_cast<std::uint32_t>(random()));
    if (std::isnan(value)) {
      continue;
    }
    ASSERT_EQ(float_to_f16_bits(value), reference_encode(kHalf, value)) << std::hexfloat << value;
  }
}

// ---- bf16 ----------------------------------------------------------------------------------------

TEST(BF16, DecodesAllBitPatterns) {
  for (std::uint32_t i = 0; i <= 0xFFFF; ++i) {
    const auto bits = static_cast<std::uint16_t>(i);
    const float decoded = bf16_bits_to_float(bits);
    const double expected = reference_decode(kBrain, bits);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(decoded)) << std::hex << i;
      ASSERT_EQ(std::signbit(decoded), (i >> 15) != 0) << std::hex << i;
    } else {
      ASSERT_EQ(float_bits(decoded), float_bits(static_cast<float>(expected))) << std::hex << i;
    }
  }
}

TEST(BF16, EveryValueRoundTripsThroughFloat) {
  for (std::uint32_t i = 0; i <= 0xFFFF; ++i) {
    const auto bits = static_cast<std::uint16_t>(i);
    if (is_nan_bits(kBrain, bits)) {
      continue;
    }
    ASSERT_EQ(float_to_bf16_bits(bf16_bits_to_float(bits)), bits) << std::hex << i;
  }
}

TEST(BF16, RoundsMidpointsToEvenAndNeighboursToNearest) {
  for (std::uint32_t i = 0; i < 0x7F80; ++i) {
    const double low = reference_decode(kBrain, static_cast<std::uint16_t>(i));
    const double high =
        i + 1 == 0x7F80 ? std::ldexp(1.0, 128) : reference_decode(kBrain, static_cast<std::uint16_t>(i + 1));
    const double exact_midpoint = (low + high) / 2;
    const auto midpoint = static_cast<float>(exact_midpoint);
    ASSERT_EQ(static_cast<double>(midpoint), exact_midpoint) << "midpoint must be exact in float";
    for (const float sign : {1.0f, -1.0f}) {
      const float value = sign * midpoint;
      const std::uint16_t sign_bit = sign < 0 ? 0x8000 : 0;
      const std::uint16_t even =
          (i & 1) == 0 ? static_cast<std::uint16_t>(i) : static_cast<std::uint16_t>(i + 1);
      ASSERT_EQ(float_to_bf16_bits(value), sign_bit | even) << std::hex << i;
      const float above = std::nextafter(value, sign * std::numeric_limits<float>::infinity());
      const float below = std::nextafter(value, 0.0f);
      ASSERT_EQ(float_to_bf16_bits(above), sign_bit | (i + 1)) << std::hex << i;
      ASSERT_EQ(float_to_bf16_bits(below), sign_bit | i) << std::hex << i;
    }
  }
}

TEST(BF16, SpecialValues) {
  EXPECT_EQ(float_to_bf16_bits(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x00008000u)), 0x0000);  // subnormal tie to even (0)
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie to even (2)
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x00008001u)), 0x0001);  // just above the tie
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x007FFFFFu)),
            0x0080);  // largest subnormal -> min normal
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7F80);  // overflow to Inf
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x7F7F7FFFu)), 0x7F7F);  // just below the threshold
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0xFF7F8000u)), 0xFF80);  // threshold tie: -Inf
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16_bits(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(float_to_bf16_bits(1.00390625f), 0x3F80);  // 1 + 2^-8: tie, 1.0 is even
  EXPECT_EQ(float_to_bf16_bits(1.01171875f), 0x3F82);  // 1 + 3*2^-8: tie, up to even
}

TEST(BF16, NanStaysQuietNanWithItsSign) {
  const std::vector<std::uint32_t> nans = {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,
                                           0x7FFFFFFF, 0xFFFFFFFF, 0x7F80FFFF, 0xFF80FFFF};
  for (const std::uint32_t bits : nans) {
    const std::uint16_t brain = float_to_bf16_bits(std::bit_cast<float>(bits));
    EXPECT_TRUE(is_quiet_nan_bits(kBrain, brain)) << std::hex << bits << " -> " << brain;
    EXPECT_EQ(brain >> 15, bits >> 31) << std::hex << bits;
  }
}

TEST(BF16, RandomFloatsMatchTheReference) {
  std::mt19937 random(7);
  for (int i = 0; i < 4'000'000; ++i) {
    const float value = std::bit_cast<float>(static_cast<std::uint32_t>(random()));
    if (std::isnan(value)) {
      continue;
    }
    ASSERT_EQ(float_to_bf16_bits(value), reference_encode(kBrain, value)) << std::hexfloat << value;
  }
}

// ---- bulk conversions ----------------------------------------------------------------------------

// Values that exercise every branch: zeros, subnormals of each format, ties, overflow, Inf, NaN.
std::vector<double> awkward_values(std::size_t count, std::uint32_t seed) {
  std::mt19937_64 random(seed);
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                -1.0,
                                65504.0,
                                65520.0,
                                1e10,
                                std::ldexp(1.0, -25),
                                std::ldexp(1.0, -130),
                                std::ldexp(1.0, -150),
                                1.00390625,
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::quiet_NaN(),
                                1e300,
                                -1e-300};
  std::uniform_real_distribution<double> mantissa(-2.0, 2.0);
  std::uniform_int_distribution<int> exponent(-140, 20);
  while (values.size() < count) {
    values.push_back(std::ldexp(mantissa(random), exponent(random)));
  }
  values.resize(count);
  return values;
}

std::uint16_t load_u16(const std::byte* bytes) {
  std::uint16_t value = 0;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

// 10007 elements: several internal chunks and a ragged tail; byte buffers start at an odd address.
constexpr std::size_t kCount = 10007;

void expect_same_value(double actual, double expected, std::size_t i) {
  if (std::isnan(expected)) {
    ASSERT_TRUE(std::isnan(actual)) << i;
  } else {
    ASSERT_EQ(std::bit_cast<std::uint64_t>(actual), std::bit_cast<std::uint64_t>(expected)) << i;
  }
}

TEST(BulkConversion, SixteenBitEncodeOfDoublesRoundsOnceFromTheDouble) {
  std::vector<double> values = awkward_values(kCount, 3);
  // Just above / below fp16 and bf16 midpoints by far less than a float ulp: rounding through float
  // first would land exactly on the midpoint and then tie to even, in the wrong direction half the time.
  for (std::size_t i = 0; i < 2000; ++i) {
    const double midpoint = (1.0 + std::ldexp(2.0 * static_cast<double>(i) + 1.0, -11));
    values[100 + i] = midpoint * (i % 2 == 0 ? 1.0 + 1e-12 : 1.0 - 1e-12);
    values[3000 + i] = (1.0 + std::ldexp(2.0 * static_cast<double>(i % 64) + 1.0, -8)) *
                       (i % 2 == 0 ? 1.0 + 1e-12 : 1.0 - 1e-12);
  }
  for (const auto& [dtype, format] : {std::pair{DType::F16, kHalf}, std::pair{DType::BF16, kBrain}}) {
    std::vector<std::byte> storage(2 * kCount + 1);
    const std::span<std::byte> bytes(storage.data() + 1, 2 * kCount);
    encode(dtype, std::span<const double>(values), bytes);
    for (std::size_t i = 0; i < kCount; ++i) {
      const std::uint16_t actual = load_u16(bytes.data() + 2 * i);
      if (std::isnan(values[i])) {
        ASSERT_TRUE(is_quiet_nan_bits(format, actual)) << i;
      } else {
        ASSERT_EQ(actual, reference_encode(format, values[i]))
            << dtype_name(dtype) << " " << i << " " << std::hexfloat << values[i];
      }
    }
  }
}

TEST(BulkConversion, SixteenBitEncodeOfFloatsMatchesTheReference) {
  const std::vector<double> doubles = awkward_values(kCount, 4);
  const std::vector<float> values(doubles.begin(), doubles.end());
  for (const auto& [dtype, format] : {std::pair{DType::F16, kHalf}, std::pair{DType::BF16, kBrain}}) {
    std::vector<std::byte> storage(2 * kCount + 1);
    const std::span<std::byte> bytes(storage.data() + 1, 2 * kCount);
    encode(dtype, std::span<const float>(values), bytes);
    for (std::size_t i = 0; i < kCount; ++i) {
      const std::uint16_t actual = load_u16(bytes.data() + 2 * i);
      if (std::isnan(values[i])) {
        ASSERT_TRUE(is_quiet_nan_bits(format, actual)) << i;
      } else {
        ASSERT_EQ(actual, reference_encode(format, values[i])) << dtype_name(dtype) << " " << i;
      }
    }
  }
}

TEST(BulkConversion, SixteenBitDecodeMatchesTheReference) {
  std::mt19937 random(5);
  std::vector<std::byte> storage(2 * kCount + 1);
  const std::span<std::byte> bytes(storage.data() + 1, 2 * kCount);
  for (std::byte& byte : bytes) {
    byte = static_cast<std::byte>(random());
  }
  for (const auto& [dtype, format] : {std::pair{DType::F16, kHalf}, std::pair{DType::BF16, kBrain}}) {
    std::vector<float> floats(kCount);
    std::vector<double> doubles(kCount);
    decode(dtype, bytes, std::span<float>(floats));
    decode(dtype, bytes, std::span<double>(doubles));
    for (std::size_t i = 0; i < kCount; ++i) {
      const double expected = reference_decode(format, load_u16(bytes.data() + 2 * i));
      expect_same_value(floats[i], expected, i);
      expect_same_value(doubles[i], expected, i);
    }
  }
}

TEST(BulkConversion, F32AndF64AreLittleEndianIeee) {
  const std::vector<double> values = awkward_values(kCount, 6);
  std::vector<std::byte> f64_storage(8 * kCount + 3);
  const std::span<std::byte> f64_bytes(f64_storage.data() + 3, 8 * kCount);
  encode(DType::F64, std::span<const double>(values), f64_bytes);
  EXPECT_EQ(std::memcmp(f64_bytes.data(), values.data(), f64_bytes.size()), 0);

  std::vector<std::byte> f32_storage(4 * kCount + 1);
  const std::span<std::byte> f32_bytes(f32_storage.data() + 1, 4 * kCount);
  encode(DType::F32, std::span<const double>(values), f32_bytes);
  std::vector<double> decoded(kCount);
  decode(DType::F32, f32_bytes, std::span<double>(decoded));
  std::vector<float> decoded_floats(kCount);
  decode(DType::F64, f64_bytes, std::span<float>(decoded_floats));
  for (std::size_t i = 0; i < kCount; ++i) {
    std::uint32_t stored = 0;
    std::memcpy(&stored, f32_bytes.data() + 4 * i, 4);
    const auto expected = static_cast<float>(values[i]);  // hardware round-to-nearest-even
    if (std::isnan(values[i])) {
      ASSERT_TRUE(std::isnan(std::bit_cast<float>(stored))) << i;
      continue;
    }
    ASSERT_EQ(stored, std::bit_cast<std::uint32_t>(expected)) << i;
    ASSERT_EQ(decoded[i], static_cast<double>(expected)) << i;
    ASSERT_EQ(std::bit_cast<std::uint32_t>(decoded_floats[i]), std::bit_cast<std::uint32_t>(expected)) << i;
  }
}

TEST(BulkConversion, EmptySpansAreFine) {
  for (const DType dtype : {DType::F16, DType::BF16, DType::F32, DType::F64}) {
    EXPECT_NO_THROW(decode(dtype, {}, std::span<double>()));
    EXPECT_NO_THROW(encode(dtype, std::span<const float>(), {}));
  }
}

TEST(BulkConversion, NonFloatTypesAreRefused) {
  std::vector<std::byte> bytes(16);
  std::vector<double> doubles(2);
  std::vector<float> floats(2);
  for (const DType dtype :
       {DType::BOOL, DType::U8, DType::I8, DType::I16, DType::U16, DType::I32, DType::U32, DType::I64,
        DType::U64, DType::C64, DType::F8_E4M3, DType::F8_E5M2, DType::F8_E8M0, DType::F8_E4M3FNUZ,
        DType::F8_E5M2FNUZ, DType::F6_E3M2, DType::F6_E2M3, DType::F4}) {
    for (const auto& call :
         std::vector<std::function<void()>>{[&] { decode(dtype, bytes, std::span<double>(doubles)); },
                                            [&] { decode(dtype, bytes, std::span<float>(floats)); },
                                            [&] { encode(dtype, std::span<const double>(doubles), bytes); },
                                            [&] { encode(dtype, std::span<const float>(floats), bytes); }}) {
      try {
        call();
        FAIL() << dtype_name(dtype) << " was accepted";
      } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::adapter_dtype_unsupported) << dtype_name(dtype);
        EXPECT_NE(std::string(error.what()).find(dtype_name(dtype)), std::string::npos) << error.what();
      }
    }
  }
}

TEST(BulkConversion, MismatchedSizesAreRefused) {
  std::vector<std::byte> bytes(6);
  std::vector<double> doubles(2);
  EXPECT_THROW(decode(DType::F16, bytes, std::span<double>(doubles)), Error);
  EXPECT_THROW(encode(DType::F32, std::span<const double>(doubles), bytes), Error);
}

}  // namespace
}  // namespace lorakit
