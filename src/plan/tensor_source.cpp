#include "plan/tensor_source.hpp"

#include "lorakit/dtype.hpp"

namespace lorakit::detail {
namespace {

void encode_matrix(DType dtype, const MatrixRM& matrix, std::span<std::byte> dst) {
  encode(dtype, std::span<const double>(matrix.data(), static_cast<std::size_t>(matrix.size())), dst);
}

}  // namespace

std::vector<std::byte> produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans,
                                      EmittedCache& cache, const OutputTensor& tensor) {
  const bool up = tensor.source == OutputTensor::Source::factor_up;
  if (up || tensor.source == OutputTensor::Source::factor_down) {
    if (auto cached = cache.take(tensor.plan, up)) return std::move(*cached);
  }
  std::vector<std::byte> bytes(tensor.spec.nbytes());
  switch (tensor.source) {
    case OutputTensor::Source::copy:
      reader.read(*tensor.input, bytes);
      break;
    case OutputTensor::Source::convert:
      encode(tensor.spec.dtype, reader.read_doubles(*tensor.input), bytes);
      break;
    case OutputTensor::Source::scalar: {
      const double value[1] = {tensor.value};
      encode(tensor.spec.dtype, value, bytes);
      break;
    }
    case OutputTensor::Source::factor_up:
    case OutputTensor::Source::factor_down: {
      const ModulePlan& plan = plans[tensor.plan];
      encode_matrix(tensor.spec.dtype, up ? emit_up(reader, plan) : emit_down(reader, plan), bytes);
      break;
    }
  }
  return bytes;
}

}  // namespace lorakit::detail
