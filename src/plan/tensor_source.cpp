#include "plan/tensor_source.hpp"

#include <cstring>

#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"

namespace lorakit::detail {
namespace {

void encode_matrix(DType dtype, const MatrixRM& matrix, std::span<std::byte> dst) {
  encode(dtype, std::span<const double>(matrix.data(), static_cast<std::size_t>(matrix.size())), dst);
}

}  // namespace

void produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans, EmittedCache& cache,
                    const OutputTensor& tensor, std::span<std::byte> dst) {
  switch (tensor.source) {
    case OutputTensor::Source::copy:
      reader.read(*tensor.input, dst);
      return;
    case OutputTensor::Source::convert:
      encode(tensor.spec.dtype, reader.read_doubles(*tensor.input), dst);
      return;
    case OutputTensor::Source::scalar: {
      const double value[1] = {tensor.value};
      encode(tensor.spec.dtype, value, dst);
      return;
    }
    case OutputTensor::Source::factor_up:
    case OutputTensor::Source::factor_down: {
      const bool up = tensor.source == OutputTensor::Source::factor_up;
      if (auto cached = cache.take(tensor.plan, up)) {
        if (cached->size() != dst.size()) throw Error(ErrorCode::internal, "", tensor.spec.name, "cached resized factor has the wrong size");
        std::memcpy(dst.data(), cached->data(), dst.size());
        return;
      }
      const ModulePlan& plan = plans[tensor.plan];
      encode_matrix(tensor.spec.dtype, up ? emit_up(reader, plan) : emit_down(reader, plan), dst);
      return;
    }
  }
}

}  // namespace lorakit::detail
