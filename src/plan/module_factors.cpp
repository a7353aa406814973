#include "plan/module_factors.hpp"

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit::detail {

std::uint64_t trailing_product(const std::vector<std::uint64_t>& shape, std::size_t from) {
  std::uint64_t product = 1;
  for (std::size_t i = from; i < shape.size(); ++i) product *= shape[i];
  return product;
}

// Integer test of the exponent bits: one contiguous pass the compiler vectorises (Eigen's allFinite
// walks a row-major matrix with a stride).
std::uint64_t count_nonfinite(std::span<const double> values) {
  constexpr std::uint64_t kExponent = 0x7ff0000000000000ull;
  std::uint64_t count = 0;
  for (const double value : values) {
    const auto bits = std::bit_cast<std::uint64_t>(value);
    count += (bits & kExponent) == kExponent;
  }
  return count;
}

const TensorInfo& required(const Module& module, Role role) {
  const TensorInfo* info = module.tensor(role);
  if (info == nullptr) {
    throw Error(ErrorCode::adapter_incomplete, "", module.stem,
                fmt::format("{} module has no {} tensor", module_kind_name(module.kind), role_name(role)));
  }
  return *info;
}

namespace {

// A tensor as (shape[0]) × (product of the rest).
MatrixRM read_rows(const Reader& reader, const TensorInfo& info, std::uint64_t& nonfinite) {
  const std::uint64_t rows = info.shape.empty() ? 1 : info.shape[0];
  return read_matrix(reader, info, rows, trailing_product(info.shape, 1), nonfinite);
}

// Tucker core (r_a, r_b, K...) flattened to r_a × (r_b·K) and folded into `down` (r_b × in).
MatrixRM fold(const Reader& reader, const TensorInfo& core, const MatrixRM& down, std::uint64_t& nonfinite) {
  const MatrixRM core_flat = read_rows(reader, core, nonfinite);
  return fold_tucker(core_flat, static_cast<std::size_t>(down.rows()), down);
}

// One Hadamard term of a LoHa as a product: plain (w_a (out, r), w_b (r, n)) or Tucker
// (w_a (r, out), t (r, r, K), w_b (r, in)): up = w_aᵀ, down = fold(t, w_b).
ProductFactors loha_term(const Reader& reader, const Module& module, Role a, Role b, Role t,
                         std::uint64_t& nonfinite) {
  ProductFactors term;
  const bool tucker = module.kind == ModuleKind::loha_tucker;
  MatrixRM w_a = read_rows(reader, required(module, a), nonfinite);
  term.up = tucker ? MatrixRM(w_a.transpose()) : std::move(w_a);
  MatrixRM w_b = read_rows(reader, required(module, b), nonfinite);
  term.down = tucker ? fold(reader, required(module, t), w_b, nonfinite) : std::move(w_b);
  return term;
}

void check_inner(const Module& module, const ProductFactors& p) {
  if (p.up.cols() != p.down.rows()) {
    throw Error(ErrorCode::adapter_shape_mismatch, "", module.stem,
                fmt::format("factor inner dimensions differ ({} vs {})", p.up.cols(), p.down.rows()));
  }
}

HadamardProduct load_hadamard(const Reader& reader, const Module& module, std::uint64_t& nonfinite) {
  ProductFactors first = loha_term(reader, module, Role::hada_w1_a, Role::hada_w1_b, Role::hada_t1, nonfinite);
  ProductFactors second = loha_term(reader, module, Role::hada_w2_a, Role::hada_w2_b, Role::hada_t2, nonfinite);
  check_inner(module, first);
  check_inner(module, second);
  return {std::move(first.up), std::move(first.down), std::move(second.up), std::move(second.down)};
}

}  // namespace

bool loha_is_dense(const Module& module) {
  if (module.kind != ModuleKind::loha && module.kind != ModuleKind::loha_tucker) return false;
  const TensorInfo* b1 = module.tensor(Role::hada_w1_b);
  const TensorInfo* b2 = module.tensor(Role::hada_w2_b);
  if (b1 == nullptr || b2 == nullptr || b1->shape.empty() || b2->shape.empty()) return false;
  return b1->shape[0] * b2->shape[0] >= std::min(module.out_features(), module.in_flat());
}

MatrixRM read_matrix(const Reader& reader, const TensorInfo& info, std::uint64_t rows, std::uint64_t cols,
                     std::uint64_t& nonfinite) {
  MatrixRM matrix(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  const std::vector<std::byte> bytes = reader.read(info);
  const std::span<double> values(matrix.data(), static_cast<std::size_t>(matrix.size()));
  decode(info.dtype, bytes, values);
  nonfinite += count_nonfinite(values);
  return matrix;
}

StoredProduct read_stored_product(const Reader& reader, const Module& module, Side side) {
  StoredProduct result;
  if (side != Side::down) result.up = StoredFactor(reader, required(module, Role::up));
  if (side != Side::up) result.down = StoredFactor(reader, required(module, Role::down));
  if (side == Side::both && result.up.cols() != result.down.rows()) {
    throw Error(ErrorCode::adapter_shape_mismatch, "", module.stem,
                fmt::format("factor inner dimensions differ ({} vs {})", result.up.cols(), result.down.rows()));
  }
  return result;
}

ProductFactors load_product(const Reader& reader, const Module& module, std::uint64_t& nonfinite, Side side) {
  ProductFactors result;
  const bool up = side != Side::down;
  const bool down = side != Side::up;
  switch (module.kind) {
    case ModuleKind::lora:
    case ModuleKind::lora_tucker:
      if (up) result.up = read_rows(reader, required(module, Role::up), nonfinite);
      if (down) result.down = read_rows(reader, required(module, Role::down), nonfinite);
      if (down && module.kind == ModuleKind::lora_tucker) {
        result.down = fold(reader, required(module, Role::mid), result.down, nonfinite);
      }
      break;
    case ModuleKind::loha:
    case ModuleKind::loha_tucker:
      result.hadamard = load_hadamard(reader, module, nonfinite);
      return result;
    case ModuleKind::lokr:
      throw Error(ErrorCode::internal, "", module.stem, "LoKr is not a plain product");
  }
  if (side == Side::both) check_inner(module, result);
  return result;
}

FactoredSvd product_svd(const ProductFactors& factors, const DirectionsWanted& wanted) {
  if (factors.hadamard) return hadamard_svd(*factors.hadamard, wanted);
  return factored_svd(factors.up, factors.down, wanted);
}

MatrixRM up_times(const ProductFactors& factors, const Eigen::MatrixXd& up_transform) {
  if (factors.hadamard) return factors.hadamard->up_times(up_transform);
  return factors.up * up_transform;
}

MatrixRM times_down(const Eigen::MatrixXd& down_transform, const ProductFactors& factors) {
  if (factors.hadamard) return factors.hadamard->times_down(down_transform);
  return down_transform * factors.down;
}

KronFactors load_kron(const Reader& reader, const Module& module, std::uint64_t& nonfinite) {
  KronFactors factors;
  if (const TensorInfo* w1 = module.tensor(Role::lokr_w1)) {
    factors.w1.full = read_rows(reader, *w1, nonfinite);
  } else {
    factors.w1.product.up = read_rows(reader, required(module, Role::lokr_w1_a), nonfinite);
    factors.w1.product.down = read_rows(reader, required(module, Role::lokr_w1_b), nonfinite);
    check_inner(module, factors.w1.product);
  }
  if (const TensorInfo* w2 = module.tensor(Role::lokr_w2)) {
    factors.w2.full = read_rows(reader, *w2, nonfinite);
  } else if (const TensorInfo* t2 = module.tensor(Role::lokr_t2)) {
    const MatrixRM w2_a = read_rows(reader, required(module, Role::lokr_w2_a), nonfinite);
    const MatrixRM w2_b = read_rows(reader, required(module, Role::lokr_w2_b), nonfinite);
    factors.w2.product.up = w2_a.transpose();
    factors.w2.product.down = fold(reader, *t2, w2_b, nonfinite);
  } else {
    factors.w2.product.up = read_rows(reader, required(module, Role::lokr_w2_a), nonfinite);
    factors.w2.product.down = read_rows(reader, required(module, Role::lokr_w2_b), nonfinite);
  }
  if (!factors.w2.full) check_inner(module, factors.w2.product);
  return factors;
}

std::uint64_t rank_bound(const Module& module) {
  const std::uint64_t full_dim = std::min(module.out_features(), module.in_flat());
  auto inner = [&](Role role, std::size_t axis) -> std::uint64_t {
    const TensorInfo* info = module.tensor(role);
    return info == nullptr || info->shape.size() <= axis ? 0 : info->shape[axis];
  };
  auto factor_bound = [&](Role full, Role b) -> std::uint64_t {
    if (const TensorInfo* info = module.tensor(full)) {
      return std::min(info->shape.at(0), trailing_product(info->shape, 1));
    }
    return inner(b, 0);  // w_b is (r, ...) in both the plain and the Tucker layout
  };
  switch (module.kind) {
    case ModuleKind::lora:
    case ModuleKind::lora_tucker:
      return std::min(inner(Role::up, 1), full_dim);
    case ModuleKind::loha:
    case ModuleKind::loha_tucker:
      return std::min(inner(Role::hada_w1_b, 0) * inner(Role::hada_w2_b, 0), full_dim);
    case ModuleKind::lokr: {
      const std::uint64_t w1 = factor_bound(Role::lokr_w1, Role::lokr_w1_b);
      const std::uint64_t w2 = factor_bound(Role::lokr_w2, Role::lokr_w2_b);
      return std::min(w1 * w2, full_dim);
    }
  }
  return full_dim;
}

}  // namespace lorakit::detail
