#pragma once
// Resized factors computed in pass 1, while the module's factors are still in memory, and kept
// encoded for the output: pass 2 then writes them without reading and decoding the input again. The
// cache holds at most `budget` bytes; modules beyond it are recomputed in pass 2, so memory stays bounded.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "lorakit/resize.hpp"
#include "plan/module_plan.hpp"

namespace lorakit::detail {

class EmittedCache {
 public:
  EmittedCache(std::size_t plans, std::uint64_t budget);

  // Pass 1, any thread, once per plan: caches plan's resized factors when they fit the budget.
  void offer(std::size_t index, const Reader& reader, const ModulePlan& plan, const LoadedFactors& loaded,
             const ResizeOptions& options);
  // Pass 2: the cached bytes of one factor, handed over (and released) at most once.
  std::optional<std::vector<std::byte>> take(std::size_t index, bool up);

 private:
  struct Entry {  // both empty unless cached
    std::vector<std::byte> up;
    std::vector<std::byte> down;
  };
  std::vector<Entry> entries_;
  std::atomic<std::uint64_t> remaining_;
};

}  // namespace lorakit::detail
