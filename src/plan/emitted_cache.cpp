#include "plan/emitted_cache.hpp"

#include <utility>

#include "lorakit/dtype.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {

EmittedCache::EmittedCache(std::size_t plans, std::uint64_t budget) : entries_(plans), remaining_(budget) {}

void EmittedCache::offer(std::size_t index, const Reader& reader, const ModulePlan& plan,
                         const LoadedFactors& loaded, const ResizeOptions& options) {
  if (!plan.emit_lora || !plan.product || loaded.empty()) return;
  const Module& module = *plan.module;
  const DType up_dtype = factor_dtype(module, options, Role::up);
  const DType down_dtype = factor_dtype(module, options, Role::down);
  const std::uint64_t bytes = plan.rank * (module.out_features() * (dtype_bits(up_dtype) / 8) +
                                           module.in_flat() * (dtype_bits(down_dtype) / 8));
  std::uint64_t available = remaining_.load(std::memory_order_relaxed);
  do {
    if (bytes > available) return;
  } while (!remaining_.compare_exchange_weak(available, available - bytes, std::memory_order_relaxed));

  Entry& entry = entries_[index];
  entry.up = emit_factor(reader, plan, Side::up, up_dtype, &loaded);
  entry.down = emit_factor(reader, plan, Side::down, down_dtype, &loaded);
}

std::optional<std::vector<std::byte>> EmittedCache::take(std::size_t index, bool up) {
  Entry& entry = entries_[index];
  std::vector<std::byte>& bytes = up ? entry.up : entry.down;
  if (bytes.empty()) return std::nullopt;  // not cached, or already taken
  return std::exchange(bytes, {});
}

}  // namespace lorakit::detail
