#pragma once
// Pass 2 of a resize: output tensors are produced in parallel but written strictly in file order,
// with a cap on the bytes held in memory, so output bytes never depend on the thread count.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace lorakit::detail {

struct OrderedWriteJob {
  std::size_t count = 0;
  unsigned threads = 1;
  std::uint64_t memory_budget = 0;  // bytes of produced-but-unwritten tensors (one tensor may exceed it)
  std::function<std::uint64_t(std::size_t)> size_of;
  // Leaves exactly size_of(i) bytes in `out` (empty on entry): fills it, or hands over a buffer it holds.
  std::function<void(std::size_t, std::vector<std::byte>& out)> produce;
  std::function<void(std::span<const std::byte>)> sink;            // called in order, caller's thread
};

void write_ordered(const OrderedWriteJob& job);

}  // namespace lorakit::detail
