#pragma once
// Conv kernels that LyCORIS stores flattened (see conv_kernels.cpp).
#include "lorakit/adapter.hpp"

namespace lorakit::adapter_detail {

// Gives plain LoHa and decomposed LoKr modules (no Tucker core) of known UNet conv layers their kernel
// back: weight_shape {out, in·kh·kw} becomes {out, in, kh, kw}.
void restore_flattened_kernels(AdapterModel& model);

}  // namespace lorakit::adapter_detail
