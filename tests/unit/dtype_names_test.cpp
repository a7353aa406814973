#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lorakit/dtype.hpp"

namespace lorakit {
namespace {

struct Expected {
  DType dtype;
  const char* name;
  unsigned bits;
};

// Spelling and element width as the safetensors format defines them.
const std::vector<Expected> kAll = {
    {DType::BOOL, "BOOL", 8},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::F32, "F32", 32},
    {DType::F64, "F64", 64},
    {DType::C64, "C64", 64},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F4, "F4", 4},
};

TEST(DTypeNames, NamesAndBitsMatchTheFormat) {
  for (const Expected& expected : kAll) {
    EXPECT_EQ(dtype_name(expected.dtype), expected.name);
    EXPECT_EQ(dtype_bits(expected.dtype), expected.bits) << expected.name;
    const std::optional<DType> parsed = parse_dtype(expected.name);
    ASSERT_TRUE(parsed.has_value()) << expected.name;
    EXPECT_EQ(*parsed, expected.dtype) << expected.name;
  }
}

TEST(DTypeNames, UnknownNamesAreRejected) {
  for (const char* name : {"", "f16", "F", "F8", "FLOAT16", "BF16 ", " F16", "F16\n", "Q4_0", "BFLOAT16"}) {
    EXPECT_FALSE(parse_dtype(name).has_value()) << "'" << name << "'";
  }
}

TEST(DTypeNames, WriterRankFollowsTheReferenceEnum) {
  // FORMATS.md §1: the reference writer's order, highest rank first.
  const std::vector<DType> descending = {
      DType::U64,         DType::I64,     DType::F64,     DType::C64,     DType::F32, DType::U32,
      DType::I32,         DType::BF16,    DType::F16,     DType::U16,     DType::I16, DType::F8_E5M2FNUZ,
      DType::F8_E4M3FNUZ, DType::F8_E8M0, DType::F8_E4M3, DType::F8_E5M2, DType::I8,  DType::U8,
      DType::F6_E3M2,     DType::F6_E2M3, DType::F4,      DType::BOOL,
  };
  ASSERT_EQ(descending.size(), kAll.size());
  for (std::size_t i = 0; i < descending.size(); ++i) {
    EXPECT_EQ(dtype_writer_rank(descending[i]), static_cast<int>(descending.size() - 1 - i))
        << dtype_name(descending[i]);
  }
}

TEST(DTypeNames, OnlyTheFourIeeeTypesAreFloat) {
  for (const Expected& expected : kAll) {
    const bool expected_float = expected.dtype == DType::F16 || expected.dtype == DType::BF16 ||
                                expected.dtype == DType::F32 || expected.dtype == DType::F64;
    EXPECT_EQ(is_float(expected.dtype), expected_float) << expected.name;
  }
}

}  // namespace
}  // namespace lorakit
