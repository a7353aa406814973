#include "plan/tensor_source.hpp"

#include "lorakit/dtype.hpp"

namespace lorakit::detail {

std::vector<std::byte> produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans,
                                      EmittedCache& cache, const OutputTensor& tensor) {
  std::vector<std::byte> bytes;
  switch (tensor.source) {
    case OutputTensor::Source::copy:
      bytes.resize(tensor.spec.nbytes());
      reader.read(*tensor.input, bytes);
      break;
    case OutputTensor::Source::convert:
      bytes.resize(tensor.spec.nbytes());
      encode(tensor.spec.dtype, reader.read_doubles(*tensor.input), bytes);
      break;
    case OutputTensor::Source::scalar: {
      bytes.resize(tensor.spec.nbytes());
      const double value[1] = {tensor.value};
      encode(tensor.spec.dtype, value, bytes);
      break;
    }
    case OutputTensor::Source::factor_up:
    case OutputTensor::Source::factor_down: {
      const bool up = tensor.source == OutputTensor::Source::factor_up;
      if (auto cached = cache.take(tensor.plan, up)) return std::move(*cached);
      const ModulePlan& plan = plans[tensor.plan];
      bytes = emit_factor(reader, plan, up ? Side::up : Side::down, tensor.spec.dtype);
      break;
    }
  }
  return bytes;
}

}  // namespace lorakit::detail
