#pragma once
// Pass 2: the bytes of one output tensor — copied, converted, a scalar, or a resized factor.
#include <span>

#include "lorakit/safetensors.hpp"
#include "plan/emitted_cache.hpp"
#include "plan/module_plan.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {

// Fills dst (exactly tensor.spec's size) with the tensor's bytes: from the cache when pass 1 left them
// there, else computed. Thread-safe for distinct tensors.
void produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans, EmittedCache& cache,
                    const OutputTensor& tensor, std::span<std::byte> dst);

}  // namespace lorakit::detail
