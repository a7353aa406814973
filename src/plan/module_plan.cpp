#include "plan/module_plan.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"
#include "plan/module_factors.hpp"

namespace lorakit::detail {
namespace {

bool is_lycoris(ModuleKind kind) { return kind != ModuleKind::lora && kind != ModuleKind::lora_tucker; }

std::uint64_t stored_factor_values(const Module& module) {
  std::uint64_t values = 0;
  for (const auto& [role, info] : module.tensors) {
    if (role != Role::alpha && role != Role::scale && role != Role::dora) values += info->numel();
  }
  return values;
}

std::span<const double> as_span(const Eigen::VectorXd& v) {
  return {v.data(), static_cast<std::size_t>(v.size())};
}

// The alpha a written module needs so that loaders compute the same scale at rank k.
std::optional<double> alpha_for_rank(const Module& module, std::uint64_t k) {
  switch (module.alpha_source) {
    case AlphaSource::tensor:
      // The reference computes alpha' = scale·k and stores it as float32.
      return static_cast<double>(static_cast<float>(module.scale * static_cast<double>(k)));
    case AlphaSource::peft_metadata:
      return module.scale * (module.rslora ? std::sqrt(static_cast<double>(k)) : static_cast<double>(k));
    case AlphaSource::scale_tensor:
    case AlphaSource::none:
      return std::nullopt;
  }
  return std::nullopt;
}

void keep_original(ModulePlan& plan, ModuleOutcome outcome, std::string note) {
  plan.emit_lora = false;
  plan.report.outcome = outcome;
  plan.report.new_rank = plan.report.old_rank;
  plan.report.new_alpha = plan.report.old_alpha;
  if (!note.empty()) plan.report.note = std::move(note);
}

double energy_of(std::span<const double> sigma) {
  double energy = 0.0;
  for (double s : sigma) energy += s * s;
  return energy;
}

void fill_retention(ModulePlan& plan, std::span<const double> sigma, std::uint64_t k) {
  const double scale = plan.module->scale;
  plan.report.energy = energy_of(sigma) * scale * scale;
  if (k == 0) {  // dropped: nothing kept (0/0 for a zero module, as retention() gives it)
    const double kept = sigma.empty() ? std::nan("") : 0.0;
    plan.report.sum_retained = plan.report.fro_retained = kept;
    plan.report.max_ratio = std::nan("");
    return;
  }
  const Retention r = retention(sigma, static_cast<std::size_t>(k));
  plan.report.sum_retained = r.sum;
  plan.report.fro_retained = r.fro;
  plan.report.max_ratio = r.max_ratio;
}

void add_note(std::string& notes, std::string_view note) {
  if (note.empty()) return;
  if (!notes.empty()) notes += "; ";
  notes += note;
}

}  // namespace

RankDecision decide_by_rule(const Module& module, const ResizeOptions& options, std::span<const double> sigma,
                            std::uint64_t old_rank) {
  const bool lycoris = is_lycoris(module.kind);
  const std::uint64_t full_dim = std::min(module.out_features(), module.in_flat());
  const RankRule rule = rank_rule_for(options, module.has_kernel());
  const std::uint64_t k = choose_rank(sigma, full_dim, old_rank, rule);
  if (!lycoris && k >= module.rank) return {ModuleOutcome::unchanged, 0, {}};
  const std::uint64_t lora_values = std::min(k, old_rank) * (module.out_features() + module.in_flat());
  if (lycoris && !options.to_lora && lora_values >= stored_factor_values(module)) {
    return {ModuleOutcome::kept, 0,
            fmt::format("kept as {}: its LoRA form at rank {} would hold {} values, it holds {}",
                        module_kind_name(module.kind), k, lora_values, stored_factor_values(module))};
  }
  return {ModuleOutcome::resized, std::max<std::uint64_t>(1, std::min(k, old_rank)), {}};
}

ModulePlan describe_module(const Module& module) {
  ModulePlan plan;
  plan.module = &module;
  ModuleReport& report = plan.report;
  report.stem = module.stem;
  report.kind = std::string(module_kind_name(module.kind));
  report.family = module.family;
  report.weight_shape = module.weight_shape;
  report.old_alpha = module.alpha;
  report.old_rank = is_lycoris(module.kind) ? rank_bound(module) : module.rank;
  if (module.is_dora()) report.note = "approximate (DoRA): magnitude kept, base weight needed to be exact";
  if (loha_is_dense(module)) add_note(report.note, "dense SVD: the LoHa's r1·r2 is at least min(out, in)");
  return plan;
}

ModulePlan dropped_by_filter(const Module& module) {
  ModulePlan plan = describe_module(module);
  plan.report.outcome = ModuleOutcome::dropped;
  plan.report.new_rank = 0;
  plan.report.sum_retained = plan.report.fro_retained = plan.report.max_ratio = std::nan("");
  plan.report.note = "--drop";
  return plan;
}

void apply_decision(ModulePlan& plan, const RankDecision& decision) {
  const Module& module = *plan.module;
  const std::span<const double> sigma = *plan.sigma;
  if (decision.outcome == ModuleOutcome::dropped) {
    plan.emit_lora = false;
    plan.report.outcome = ModuleOutcome::dropped;
    plan.report.new_rank = 0;
    plan.report.new_alpha.reset();
    plan.report.note = decision.note;
    fill_retention(plan, sigma, 0);
    return;
  }
  if (decision.outcome != ModuleOutcome::resized) {
    fill_retention(plan, sigma, plan.report.old_rank);
    keep_original(plan, decision.outcome, decision.note.empty() ? plan.report.note : decision.note);
    return;
  }
  plan.emit_lora = true;
  plan.rank = decision.rank;
  const auto kept = static_cast<std::size_t>(std::min<std::uint64_t>(plan.rank, sigma.size()));
  if (plan.product) plan.product->truncate(kept);
  if (plan.kron) {  // its σ are the module's
    plan.kron->sigma.conservativeResize(static_cast<Eigen::Index>(kept));
    plan.kron->pairs.resize(kept);
  }
  fill_retention(plan, sigma, plan.rank);
  plan.report.outcome = ModuleOutcome::resized;
  plan.report.new_rank = plan.rank;
  plan.written_alpha = alpha_for_rank(module, plan.rank);
  plan.report.new_alpha = plan.written_alpha;
  // A scale with no alpha to carry it (e.g. a LoKr whose loader scale is fixed) goes into the factors.
  plan.factor_scale = !plan.written_alpha && module.alpha_source == AlphaSource::none ? module.scale : 1.0;
}

ModulePlan plan_module(const Reader& reader, const Module& module, const ResizeOptions& options,
                       const RankDecider& decide, LoadedFactors* loaded) {
  ModulePlan plan = describe_module(module);
  if (is_lycoris(module.kind) && options.keep_lycoris) {
    keep_original(plan, ModuleOutcome::kept, "--keep-lycoris");
    return plan;
  }

  RankDecision decision;
  auto directions = [&](const Eigen::VectorXd& sigma) {
    decision = decide(as_span(sigma), plan.report.old_rank);
    return decision.outcome == ModuleOutcome::resized ? decision.rank : 0;
  };
  std::uint64_t nonfinite = 0;
  if (module.kind == ModuleKind::lokr) {
    KronFactors factors = load_kron(reader, module, nonfinite);
    auto factor_svd = [](const KronFactor& f) {
      return f.full ? explicit_svd(*f.full) : explicit_svd(f.product.up, f.product.down);
    };
    if (nonfinite == 0) {
      plan.kron = kron_svd(factor_svd(factors.w1), factor_svd(factors.w2));
      directions(plan.kron->sigma);
    }
  } else if (module.kind == ModuleKind::lora) {
    StoredProduct factors = read_stored_product(reader, module);
    const Eigen::MatrixXd gram_up = factors.up.gram_of_columns(nonfinite);
    const Eigen::MatrixXd gram_down = factors.down.gram_of_rows(nonfinite);
    if (nonfinite == 0) {
      // Only the directions that will be written get singular vectors.
      plan.product = factored_svd_from_grams(
          gram_up, gram_down, factors.up.rows(), factors.down.cols(),
          [&] { return std::pair{factors.up.decoded(), factors.down.decoded()}; }, directions);
      if (loaded != nullptr) loaded->stored = std::move(factors);
    }
  } else {
    ProductFactors factors = load_product(reader, module, nonfinite);
    if (nonfinite == 0) {
      plan.product = product_svd(factors, directions);
      if (loaded != nullptr) loaded->decoded = std::move(factors);
    }
  }
  plan.report.nonfinite = nonfinite;
  if (nonfinite != 0) {
    plan.report.sum_retained = plan.report.fro_retained = plan.report.max_ratio = std::nan("");
    keep_original(plan, ModuleOutcome::unchanged, fmt::format("{} non-finite values: kept unchanged", nonfinite));
    return plan;
  }
  const Eigen::VectorXd& sigma = plan.kron ? plan.kron->sigma : plan.product->sigma;
  plan.sigma.emplace(sigma.data(), sigma.data() + sigma.size());
  apply_decision(plan, decision);
  return plan;
}

namespace {

// Splits factor_scale as √|s| per factor, the sign going to up.
double scale_share(const ModulePlan& plan, bool up) {
  if (plan.factor_scale == 1.0) return 1.0;
  const double root = std::sqrt(std::abs(plan.factor_scale));
  return up && plan.factor_scale < 0 ? -root : root;
}

// B·up_transform or down_transform·A, from the factors pass 1 kept or from a fresh read of one side.
// Stored (plain LoRA) factors are multiplied in Scalar; decoded ones in float64.
template <typename Scalar>
RowMatrix<Scalar> rotated_factor(const Reader& reader, const ModulePlan& plan, bool up, const LoadedFactors* loaded) {
  const Module& module = *plan.module;
  const FactoredSvd& svd = *plan.product;
  const Side side = up ? Side::up : Side::down;
  if (module.kind == ModuleKind::lora) {
    const StoredProduct read = loaded != nullptr ? StoredProduct{} : read_stored_product(reader, module, side);
    const StoredProduct& factors = loaded != nullptr ? loaded->stored : read;
    return up ? factors.up.times<Scalar>(svd.up_transform) : factors.down.left_times<Scalar>(svd.down_transform);
  }
  std::uint64_t nonfinite = 0;
  const ProductFactors read = loaded != nullptr ? ProductFactors{} : load_product(reader, module, nonfinite, side);
  const ProductFactors& factors = loaded != nullptr ? loaded->decoded : read;
  if (up) return up_times(factors, svd.up_transform).cast<Scalar>();
  return times_down(svd.down_transform, factors).cast<Scalar>();
}

template <typename Scalar>
RowMatrix<Scalar> emit_side(const Reader& reader, const ModulePlan& plan, bool up, const LoadedFactors* loaded) {
  const Module& module = *plan.module;
  const auto rank = static_cast<Eigen::Index>(plan.rank);
  RowMatrix<Scalar> out = up ? RowMatrix<Scalar>(static_cast<Eigen::Index>(module.out_features()), rank)
                             : RowMatrix<Scalar>(rank, static_cast<Eigen::Index>(module.in_flat()));
  Eigen::Index kept = 0;
  if (plan.kron && plan.kron->sigma.size() > 0) {
    auto [kron_up, kron_down] = kron_truncate(*plan.kron, static_cast<std::size_t>(plan.kron->sigma.size()));
    kept = plan.kron->sigma.size();
    if (up) {
      out.leftCols(kept) = kron_up.cast<Scalar>();
    } else {
      out.topRows(kept) = kron_down.cast<Scalar>();
    }
  } else if (plan.product && plan.product->directions() > 0) {
    kept = static_cast<Eigen::Index>(plan.product->directions());
    if (up) {
      out.leftCols(kept) = rotated_factor<Scalar>(reader, plan, up, loaded);
    } else {
      out.topRows(kept) = rotated_factor<Scalar>(reader, plan, up, loaded);
    }
  }
  // Directions beyond the numerical rank are zero (the chosen rank is kept, as the reference does).
  if (up) {
    out.rightCols(rank - kept).setZero();
  } else {
    out.bottomRows(rank - kept).setZero();
  }
  const double share = scale_share(plan, up);
  if (share != 1.0) out *= static_cast<Scalar>(share);
  return out;
}

template <typename Scalar>
std::vector<std::byte> encoded_side(const Reader& reader, const ModulePlan& plan, bool up, DType dtype,
                                    const LoadedFactors* loaded) {
  const RowMatrix<Scalar> factor = emit_side<Scalar>(reader, plan, up, loaded);
  const auto count = static_cast<std::size_t>(factor.size());
  std::vector<std::byte> bytes(count * (dtype_bits(dtype) / 8));
  encode(dtype, std::span<const Scalar>(factor.data(), count), bytes);
  return bytes;
}

}  // namespace

std::vector<std::byte> emit_factor(const Reader& reader, const ModulePlan& plan, Side side, DType dtype,
                                   const LoadedFactors* loaded) {
  // Only a plain LoRA's products are formed in float32; everything else is rounded once, from float64.
  const bool single = dtype_bits(dtype) == 16 && plan.module->kind == ModuleKind::lora;
  if (single) return encoded_side<float>(reader, plan, side == Side::up, dtype, loaded);
  return encoded_side<double>(reader, plan, side == Side::up, dtype, loaded);
}

}  // namespace lorakit::detail
