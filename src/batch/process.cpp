// Process-wide concerns of a batch run: stopping on SIGINT/SIGTERM, and yielding CPU and I/O.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <string>
#include <system_error>

#include "lorakit/batch.hpp"

namespace lorakit::batch {
namespace {

std::atomic<int> stop_requested{0};
static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");

void restore_default_handlers() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

extern "C" void on_stop_signal(int signal) {
  request_stop(signal);
  restore_default_handlers();  // a second Ctrl-C ends the process at once
}

constexpr int kNiceLevel = 10;
// linux/ioprio.h: IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7), for one thread (IOPRIO_WHO_PROCESS with a tid).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBestEffort = 2;
constexpr int kIoprioLowestBestEffort = (kIoprioClassBestEffort << kIoprioClassShift) | 7;

// Linux keeps nice and I/O priority per thread: lower those of every thread that exists now; threads
// created later inherit them from their creator.
bool lower_thread_priority(pid_t thread) {
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(thread));
  bool lowered = errno == 0;
  if (lowered && current < kNiceLevel) {
    lowered = ::setpriority(PRIO_PROCESS, static_cast<id_t>(thread), kNiceLevel) == 0;
  }
  return ::syscall(SYS_ioprio_set, kIoprioWhoProcess, thread, kIoprioLowestBestEffort) == 0 && lowered;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

void request_stop(int signal) {
  int none = 0;
  stop_requested.compare_exchange_strong(none, signal);
}

int stop_signal() { return stop_requested.load(); }

void clear_stop() { stop_requested.store(0); }

bool lower_priority() {
  bool lowered = true;
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc/self/task", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    lowered = lower_thread_priority(static_cast<pid_t>(std::stol(it->path().filename().string()))) && lowered;
  }
  return !error && lowered;
}

}  // namespace lorakit::batch
