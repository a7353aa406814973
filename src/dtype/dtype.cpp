#include "lorakit/dtype.hpp"

#include <array>
#include <string>

#include "lorakit/error.hpp"

namespace lorakit {
namespace {

struct DTypeTraits {
  DType dtype;
  std::string_view name;
  unsigned bits;
};

// In DType declaration order, so kTraits[index] describes DType(index).
constexpr std::array<DTypeTraits, 22> kTraits{{
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
}};

// The reference enum (huggingface safetensors `Dtype`) in declaration order; the index is the rank.
constexpr std::array<DType, 22> kReferenceEnumOrder{
    DType::BOOL,    DType::F4,      DType::F6_E2M3, DType::F6_E3M2,     DType::U8,          DType::I8,
    DType::F8_E5M2, DType::F8_E4M3, DType::F8_E8M0, DType::F8_E4M3FNUZ, DType::F8_E5M2FNUZ, DType::I16,
    DType::U16,     DType::F16,     DType::BF16,    DType::I32,         DType::U32,         DType::F32,
    DType::C64,     DType::F64,     DType::I64,     DType::U64,
};

constexpr bool traits_in_declaration_order() {
  for (std::size_t i = 0; i < kTraits.size(); ++i) {
    if (static_cast<std::size_t>(kTraits[i].dtype) != i) {
      return false;
    }
  }
  return true;
}
static_assert(traits_in_declaration_order());

const DTypeTraits& traits(DType dtype) {
  const auto index = static_cast<std::size_t>(dtype);
  if (index >= kTraits.size()) {
    throw Error(ErrorCode::internal, "invalid DType value " + std::to_string(index));
  }
  return kTraits[index];
}

}  // namespace

std::optional<DType> parse_dtype(std::string_view name) {
  for (const DTypeTraits& entry : kTraits) {
    if (entry.name == name) {
      return entry.dtype;
    }
  }
  return std::nullopt;
}

std::string_view dtype_name(DType dtype) { return traits(dtype).name; }

unsigned dtype_bits(DType dtype) { return traits(dtype).bits; }

int dtype_writer_rank(DType dtype) {
  for (std::size_t rank = 0; rank < kReferenceEnumOrder.size(); ++rank) {
    if (kReferenceEnumOrder[rank] == dtype) {
      return static_cast<int>(rank);
    }
  }
  throw Error(ErrorCode::internal, "invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

bool is_float(DType dtype) {
  return dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F32 || dtype == DType::F64;
}

}  // namespace lorakit
