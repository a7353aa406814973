#include "plan/tensor_source.hpp"

#include "lorakit/dtype.hpp"

namespace lorakit::detail {
namespace {

void encode_matrix(DType dtype, const MatrixRM& matrix, std::span<std::byte> dst) {
  encode(dtype, std::span<const double>(matrix.data(), static_cast<std::size_t>(matrix.size())), dst);
}

}  // namespace

void produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans, const OutputTensor& tensor,
                    std::span<std::byte> dst) {
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
      encode_matrix(tensor.spec.dtype, emit_up(reader, plans[tensor.plan]), dst);
      return;
    case OutputTensor::Source::factor_down:
      encode_matrix(tensor.spec.dtype, emit_down(reader, plans[tensor.plan]), dst);
      return;
  }
}

}  // namespace lorakit::detail
