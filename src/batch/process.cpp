// Process-wide concerns of a batch run: yielding CPU and I/O (stopping on signals is lorakit/interrupt.hpp).
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

#include "lorakit/batch.hpp"

namespace lorakit::batch {
namespace {

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
