#pragma once
// Minimal work distribution for the planner: N independent tasks over T threads. Each task writes
// only its own result slot, so results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lorakit::detail {

inline unsigned resolve_threads(unsigned requested) {
  if (requested != 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Runs task(i) for i in [0, count) on `threads` threads (the caller's thread is one of them).
// The first exception thrown by a task or by `on_done` stops further tasks and is rethrown here.
// `on_done` is called on the caller's thread only, after each task it ran and at the end, with the
// number of finished tasks (for progress reporting); an exception from it stops the tasks like a task's.
inline void parallel_for(std::size_t count, unsigned threads, const std::function<void(std::size_t)>& task,
                         const std::function<void(std::size_t)>& on_done = {}) {
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> finished{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&](bool report) {
    for (;;) {
      if (failed.load()) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        task(i);
        const std::size_t done = finished.fetch_add(1) + 1;
        if (report && on_done) on_done(done);  // may throw to cancel (a progress callback)
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        failed.store(true);
        return;
      }
    }
  };
  const unsigned helpers = static_cast<unsigned>(std::min<std::size_t>(threads, count)) - (count > 0 ? 1 : 0);
  std::vector<std::jthread> pool;
  pool.reserve(helpers);
  for (unsigned t = 0; t < helpers; ++t) pool.emplace_back(worker, false);
  worker(true);
  pool.clear();  // joins
  if (error) std::rethrow_exception(error);
  if (on_done) on_done(finished.load());
}

}  // namespace lorakit::detail
