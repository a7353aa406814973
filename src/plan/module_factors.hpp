#pragma once
// Turns a module's stored tensors into the factored form the spectrum works on:
// every kind but LoKr is a product B·A of an effective inner dim R (MATH.md §3–§4);
// LoKr is a Kronecker product of two such factors (MATH.md §5).
#include <cstdint>
#include <optional>

#include "lorakit/adapter.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/spectrum.hpp"

namespace lorakit::detail {

// A tensor decoded to doubles, reshaped to rows × cols (row-major); counts non-finite values.
MatrixRM read_matrix(const Reader& reader, const TensorInfo& info, std::uint64_t rows, std::uint64_t cols,
                     std::uint64_t& nonfinite);

struct ProductFactors {
  MatrixRM up;    // m × R
  MatrixRM down;  // R × n
};

enum class Side { both, up, down };

// B and A of ΔW/scale for lora, lora_tucker, loha, loha_tucker modules; with Side::up or Side::down
// only that factor is read and built (the other is left empty).
ProductFactors load_product(const Reader& reader, const Module& module, std::uint64_t& nonfinite,
                            Side side = Side::both);

// One Kronecker factor: a full matrix, or a product up·down.
struct KronFactor {
  std::optional<MatrixRM> full;
  ProductFactors product;
};
struct KronFactors {
  KronFactor w1;  // a × c
  KronFactor w2;  // b × d·K
};
KronFactors load_kron(const Reader& reader, const Module& module, std::uint64_t& nonfinite);

// Upper bound of the rank of ΔW in the module's own form: inner dim for products (capped by the
// matrix size), product of the factors' bounds for LoKr.
std::uint64_t rank_bound(const Module& module);

}  // namespace lorakit::detail
