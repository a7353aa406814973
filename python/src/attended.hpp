#pragma once
// Long library calls from Python: the work runs on a helper thread with the GIL released, while the
// calling thread wakes every few milliseconds to hand the latest progress to Python's
// progress(done, total) and to run Python's signal handlers (which run on the main thread only, and
// only when asked). An exception from either — KeyboardInterrupt on Ctrl-C, or one the progress
// callback raises — cancels the work: it stops at its next progress point, unwinds (the library
// removes its temporary file), and the Python exception is raised once the helper has finished. The last
// unit of work (done == total) waits until Python has seen it, so that a callback raising there still
// cancels before the work completes (a resize commits its file after it).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <pybind11/pybind11.h>

namespace lorakit::python {

namespace py = pybind11;

class Attended {
 public:
  // progress: a Python callable (done, total), or None.
  explicit Attended(py::object progress) : progress_(std::move(progress)) {}

  // From the work, on any thread.
  void report(std::uint64_t done, std::uint64_t total) {
    std::unique_lock lock(mutex_);
    done_ = done;
    total_ = total;
    if (total == 0 || done != total) return;
    awaiting_last_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !awaiting_last_ || cancelled_; });
  }
  bool cancelled() const {
    const std::lock_guard lock(mutex_);
    return cancelled_;
  }

  // Runs work() as described above; on_cancel() (caller's thread) tells work to stop, for work that
  // does not poll cancelled(). Call with the GIL held.
  template <class Work>
  auto run(Work&& work, const std::function<void()>& on_cancel = {}) {
    std::optional<decltype(work())> result;
    std::exception_ptr failure;
    {
      py::gil_scoped_release release;
      std::thread helper([&] {
        try {
          result.emplace(work());
        } catch (...) {
          failure = std::current_exception();
        }
        const std::lock_guard lock(mutex_);
        finished_ = true;
        changed_.notify_all();
      });
      while (!wait_finished()) {
        const py::gil_scoped_acquire gil;
        attend(on_cancel);
        release_last();
      }
      helper.join();
    }
    if (!python_error_) attend(on_cancel);  // the final progress
    if (python_error_) throw *python_error_;
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }

 private:
  static constexpr std::chrono::milliseconds kPoll{50};

  // Wakes every kPoll, when the work finishes, or when it waits on its last unit; true when finished.
  bool wait_finished() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, kPoll, [this] { return finished_ || awaiting_last_; });
    return finished_;
  }

  // The work's last unit has been attended to: let it go on.
  void release_last() {
    const std::lock_guard lock(mutex_);
    if (!awaiting_last_) return;
    awaiting_last_ = false;
    changed_.notify_all();
  }

  // With the GIL held: the progress callback, then pending signals; the first Python error cancels.
  void attend(const std::function<void()>& on_cancel) {
    if (python_error_) return;
    try {
      deliver_progress();
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    } catch (py::error_already_set& error) {
      python_error_ = std::move(error);
      {
        const std::lock_guard lock(mutex_);
        cancelled_ = true;
        changed_.notify_all();  // the work may wait on its last unit
      }
      if (on_cancel) on_cancel();
    }
  }

  void deliver_progress() {
    std::uint64_t done = 0, total = 0;
    {
      const std::lock_guard lock(mutex_);
      if (done_ == delivered_done_ && total_ == delivered_total_) return;
      done = delivered_done_ = done_;
      total = delivered_total_ = total_;
    }
    if (!progress_.is_none()) progress_(done, total);
  }

  py::object progress_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t done_ = 0, total_ = 0;
  std::uint64_t delivered_done_ = 0, delivered_total_ = 0;
  bool cancelled_ = false;
  bool finished_ = false;
  bool awaiting_last_ = false;
  std::optional<py::error_already_set> python_error_;
};

}  // namespace lorakit::python
