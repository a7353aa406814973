#pragma once
// Produces the bytes of each output tensor in pass 2. A resized module's up and down come from one
// computation; the half not asked for yet is kept until its turn when it is written soon after
// (the usual case: both names share the stem), and recomputed otherwise to keep memory bounded.
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "lorakit/safetensors.hpp"
#include "plan/module_plan.hpp"
#include "plan/output_plan.hpp"

namespace lorakit::detail {

class FactorCache {
 public:
  // `order[p]` is the outputs index of the tensor at file position p.
  FactorCache(const Reader& reader, const std::vector<ModulePlan>& plans, const std::vector<OutputTensor>& outputs,
              const std::vector<std::size_t>& order);

  // Fills dst with the bytes of outputs[index], which sits at file position `position`.
  void produce(std::size_t index, std::size_t position, std::span<std::byte> dst);

 private:
  struct Entry {
    std::mutex mutex;
    std::optional<MatrixRM> pending;  // the half computed early, waiting for its turn
    std::size_t up_position = 0;
    std::size_t down_position = 0;
  };
  MatrixRM factor(std::size_t plan_index, bool up, std::size_t position);

  const Reader& reader_;
  const std::vector<ModulePlan>& plans_;
  const std::vector<OutputTensor>& outputs_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace lorakit::detail
