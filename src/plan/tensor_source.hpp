#pragma once
// Pass 2: the bytes of one output tensor — copied, converted, a scalar, or a resized factor.
#include <span>

#include "lorakit/safetensors.hpp"
#include "plan/module_plan.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {

// Fills dst (exactly tensor.spec's size) with the tensor's bytes. Thread-safe: reads only.
void produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans, const OutputTensor& tensor,
                    std::span<std::byte> dst);

}  // namespace lorakit::detail
