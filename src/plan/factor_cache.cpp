#include "plan/factor_cache.hpp"

#include <cstdint>

#include "lorakit/dtype.hpp"

namespace lorakit::detail {
namespace {

// Keep the other half only if it is written within this many tensors.
constexpr std::size_t kKeepDistance = 4;

void encode_matrix(DType dtype, const MatrixRM& matrix, std::span<std::byte> dst) {
  encode(dtype, std::span<const double>(matrix.data(), static_cast<std::size_t>(matrix.size())), dst);
}

}  // namespace

FactorCache::FactorCache(const Reader& reader, const std::vector<ModulePlan>& plans,
                         const std::vector<OutputTensor>& outputs, const std::vector<std::size_t>& order)
    : reader_(reader), plans_(plans), outputs_(outputs) {
  entries_.resize(plans.size());
  for (auto& entry : entries_) entry = std::make_unique<Entry>();
  for (std::size_t position = 0; position < order.size(); ++position) {
    const OutputTensor& tensor = outputs[order[position]];
    if (tensor.source == OutputTensor::Source::factor_up) entries_[tensor.plan]->up_position = position;
    if (tensor.source == OutputTensor::Source::factor_down) entries_[tensor.plan]->down_position = position;
  }
}

MatrixRM FactorCache::factor(std::size_t plan_index, bool up, std::size_t position) {
  Entry& entry = *entries_[plan_index];
  std::lock_guard lock(entry.mutex);
  if (entry.pending) {
    MatrixRM half = std::move(*entry.pending);
    entry.pending.reset();
    return half;
  }
  EmittedFactors factors = emit_factors(reader_, plans_[plan_index]);
  const std::size_t partner = up ? entry.down_position : entry.up_position;
  if (partner > position && partner - position <= kKeepDistance) {
    entry.pending = up ? std::move(factors.down) : std::move(factors.up);
  }
  return up ? std::move(factors.up) : std::move(factors.down);
}

void FactorCache::produce(std::size_t index, std::size_t position, std::span<std::byte> dst) {
  const OutputTensor& tensor = outputs_[index];
  switch (tensor.source) {
    case OutputTensor::Source::copy:
      reader_.read(*tensor.input, dst);
      return;
    case OutputTensor::Source::convert:
      encode(tensor.spec.dtype, reader_.read_doubles(*tensor.input), dst);
      return;
    case OutputTensor::Source::scalar: {
      const double value[1] = {tensor.value};
      encode(tensor.spec.dtype, value, dst);
      return;
    }
    case OutputTensor::Source::factor_up:
    case OutputTensor::Source::factor_down: {
      const bool up = tensor.source == OutputTensor::Source::factor_up;
      encode_matrix(tensor.spec.dtype, factor(tensor.plan, up, position), dst);
      return;
    }
  }
}

}  // namespace lorakit::detail
