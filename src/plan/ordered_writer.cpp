#include "plan/ordered_writer.hpp"

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "lorakit/error.hpp"

namespace lorakit::detail {
namespace {

std::vector<std::byte> produce_checked(const OrderedWriteJob& job, std::size_t index, std::uint64_t size) {
  std::vector<std::byte> buffer;
  job.produce(index, buffer);
  if (buffer.size() != size) {
    throw Error(ErrorCode::internal, fmt::format("output tensor {} has {} bytes, {} expected", index,
                                                 buffer.size(), size));
  }
  return buffer;
}

void write_sequential(const OrderedWriteJob& job) {
  for (std::size_t i = 0; i < job.count; ++i) job.sink(produce_checked(job, i, job.size_of(i)));
}

class Pipeline {
 public:
  explicit Pipeline(const OrderedWriteJob& job) : job_(job), slots_(job.count) {}

  void run() {
    std::vector<std::jthread> workers;
    for (unsigned t = 0; t < job_.threads; ++t) workers.emplace_back([this] { produce_loop(); });
    try {
      write_loop();
    } catch (...) {
      fail(std::current_exception());
    }
    workers.clear();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void produce_loop() {
    for (;;) {
      std::size_t index = 0;
      std::uint64_t size = 0;
      {
        std::unique_lock lock(mutex_);
        // Claim the next tensor only when it fits the budget, or when the writer needs it.
        changed_.wait(lock, [&] {
          if (error_ || next_ >= job_.count) return true;
          return next_ == written_ || in_flight_ + job_.size_of(next_) <= job_.memory_budget;
        });
        if (error_ || next_ >= job_.count) return;
        index = next_++;
        size = job_.size_of(index);
        in_flight_ += size;
      }
      std::unique_ptr<std::vector<std::byte>> buffer;
      try {
        buffer = std::make_unique<std::vector<std::byte>>(produce_checked(job_, index, size));
      } catch (...) {
        fail(std::current_exception());
        return;
      }
      {
        std::lock_guard lock(mutex_);
        slots_[index] = std::move(buffer);
      }
      changed_.notify_all();
    }
  }

  void write_loop() {
    for (std::size_t i = 0; i < job_.count; ++i) {
      std::unique_ptr<std::vector<std::byte>> buffer;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return error_ || slots_[i] != nullptr; });
        if (error_) return;
        buffer = std::move(slots_[i]);
      }
      job_.sink(*buffer);
      {
        std::lock_guard lock(mutex_);
        in_flight_ -= buffer->size();
        written_ = i + 1;
      }
      changed_.notify_all();
    }
  }

  void fail(std::exception_ptr error) {
    {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = error;
    }
    changed_.notify_all();
  }

  const OrderedWriteJob& job_;
  std::vector<std::unique_ptr<std::vector<std::byte>>> slots_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t next_ = 0;
  std::size_t written_ = 0;
  std::uint64_t in_flight_ = 0;
  std::exception_ptr error_;
};

}  // namespace

void write_ordered(const OrderedWriteJob& job) {
  if (job.threads <= 1) {
    write_sequential(job);
    return;
  }
  Pipeline(job).run();
}

}  // namespace lorakit::detail
