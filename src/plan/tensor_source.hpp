#pragma once
// Pass 2: the bytes of one output tensor — copied, converted, a scalar, or a resized factor.
#include <span>

#include "lorakit/safetensors.hpp"
#include "plan/emitted_cache.hpp"
#include "plan/module_plan.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {

// The tensor's bytes: handed over from the cache when pass 1 left them there, else computed.
// Thread-safe for distinct tensors.
std::vector<std::byte> produce_tensor(const Reader& reader, const std::vector<ModulePlan>& plans,
                                      EmittedCache& cache, const OutputTensor& tensor);

}  // namespace lorakit::detail
