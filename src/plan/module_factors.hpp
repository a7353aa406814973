#pragma once
// Turns a module's stored tensors into the factored form the spectrum works on:
// every kind but LoKr is a product B·A of an effective inner dim R (MATH.md §3–§4);
// LoKr is a Kronecker product of two such factors (MATH.md §5).
#include <cstdint>
#include <optional>
#include <span>

#include "lorakit/adapter.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/spectrum.hpp"
#include "plan/stored_factor.hpp"

namespace lorakit::detail {

// Product of shape[from..]; 1 for none.
std::uint64_t trailing_product(const std::vector<std::uint64_t>& shape, std::size_t from);

// NaN and ±Inf among `values`.
std::uint64_t count_nonfinite(std::span<const double> values);

// The module's tensor for `role`; Error(adapter_incomplete) naming the module when it has none.
const TensorInfo& required(const Module& module, Role role);

// A tensor decoded to doubles, reshaped to rows × cols (row-major); counts non-finite values.
MatrixRM read_matrix(const Reader& reader, const TensorInfo& info, std::uint64_t rows, std::uint64_t cols,
                     std::uint64_t& nonfinite);

struct ProductFactors {
  MatrixRM up;    // m × R
  MatrixRM down;  // R × n
  std::optional<HadamardProduct> hadamard;  // a LoHa: its two terms (up and down stay empty)
};

enum class Side { both, up, down };

// A plain LoRA's up and down as stored; with Side::up or Side::down only that one is read.
struct StoredProduct {
  StoredFactor up;    // m × R
  StoredFactor down;  // R × n
};
StoredProduct read_stored_product(const Reader& reader, const Module& module, Side side = Side::both);

// A product module's factors as pass 1 loaded them, kept so that its resized factors need no second
// read: a plain LoRA's as stored, any other product's decoded (Tucker fold, LoHa face-splitting).
struct LoadedFactors {
  StoredProduct stored;
  ProductFactors decoded;
  bool empty() const { return stored.up.empty() && decoded.up.size() == 0 && !decoded.hadamard; }
};

// Whether a LoHa's face-splitting form is at least as wide as ΔW itself (r₁·r₂ ≥ min(m, n), MATH.md §4):
// then its spectrum comes from the Gram of ΔW itself (hadamard_svd's dense_gram route).
bool loha_is_dense(const Module& module);

// ΔW/scale for lora, lora_tucker, loha, loha_tucker modules: B and A, or a LoHa's terms (Tucker cores
// folded). With Side::up or Side::down only that factor of a non-LoHa is built (the other is left empty)
// and read; a LoHa's terms are small and always read whole.
ProductFactors load_product(const Reader& reader, const Module& module, std::uint64_t& nonfinite,
                            Side side = Side::both);

// The SVD of such a product: hadamard_svd for a LoHa, factored_svd otherwise.
FactoredSvd product_svd(const ProductFactors& factors, const DirectionsWanted& wanted);
// B·up_transform and down_transform·A for the B·A that product_svd's transforms apply to.
MatrixRM up_times(const ProductFactors& factors, const Eigen::MatrixXd& up_transform);
MatrixRM times_down(const Eigen::MatrixXd& down_transform, const ProductFactors& factors);

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
