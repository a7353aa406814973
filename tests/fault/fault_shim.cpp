// LD_PRELOAD fault injection for the CLI fault tests (built only with the tests, never linked into
// lorakit). It wraps write/pwrite/fsync/fdatasync on regular files and, as the environment says:
//   LORAKIT_FAULT_AFTER=N         past N bytes written to regular files in total, ...
//   LORAKIT_FAULT_ERRNO=E         ... every write fails with errno E (ENOSPC, EIO or a number); the
//                                 write that crosses N is cut short at N, as on a disk that fills up
//   LORAKIT_FAULT_STALL_WHILE=F   ... or, instead of failing, each write waits while file F exists
//                                 (a test holds the writer mid-file, signals it, then removes F)
//   LORAKIT_FAULT_FSYNC=E         fsync and fdatasync of regular files fail with errno E
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

struct Config {
  bool limited = false;
  unsigned long long after = 0;
  int error = 0;
  const char* stall_while = nullptr;
  int fsync_error = 0;
};

int errno_from(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  if (std::strcmp(text, "ENOSPC") == 0) return ENOSPC;
  if (std::strcmp(text, "EIO") == 0) return EIO;
  if (std::strcmp(text, "EFBIG") == 0) return EFBIG;
  return std::atoi(text);
}

const Config& config() {
  static const Config parsed = [] {
    Config c;
    if (const char* after = std::getenv("LORAKIT_FAULT_AFTER")) {
      c.limited = true;
      c.after = std::strtoull(after, nullptr, 10);
    }
    c.error = errno_from(std::getenv("LORAKIT_FAULT_ERRNO"));
    c.stall_while = std::getenv("LORAKIT_FAULT_STALL_WHILE");
    c.fsync_error = errno_from(std::getenv("LORAKIT_FAULT_FSYNC"));
    return c;
  }();
  return parsed;
}

std::atomic<unsigned long long> written{0};

bool is_regular(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
}

template <class F>
F next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

void stall() {
  const timespec pause{0, 10'000'000};
  while (::access(config().stall_while, F_OK) == 0) ::nanosleep(&pause, nullptr);
}

// How many of `count` bytes may be written now; -1 (errno set) when the write must fail.
ssize_t allowance(int fd, size_t count) {
  const Config& c = config();
  if (!c.limited || !is_regular(fd)) return static_cast<ssize_t>(count);
  const unsigned long long before = written.load();
  if (before + count <= c.after) return static_cast<ssize_t>(count);
  if (c.stall_while != nullptr) {
    stall();
    return static_cast<ssize_t>(count);
  }
  if (before < c.after) return static_cast<ssize_t>(c.after - before);  // cut short at the limit
  errno = c.error != 0 ? c.error : EIO;
  return -1;
}

// One write through `real` of as much as allowance() permits, counted.
template <class Real, class... Offset>
ssize_t guarded(Real real, int fd, const void* data, size_t count, Offset... offset) {
  const ssize_t allowed = allowance(fd, count);
  if (allowed < 0) return -1;
  const ssize_t result = real(fd, data, static_cast<size_t>(allowed), offset...);
  if (result > 0) written.fetch_add(static_cast<unsigned long long>(result));
  return result;
}

int synced(int fd, int (*real)(int)) {
  if (config().fsync_error != 0 && is_regular(fd)) {
    errno = config().fsync_error;
    return -1;
  }
  return real(fd);
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* data, size_t count) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  return guarded(real, fd, data, count);
}

ssize_t pwrite(int fd, const void* data, size_t count, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return guarded(real, fd, data, count, offset);
}

ssize_t pwrite64(int fd, const void* data, size_t count, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite64");
  return guarded(real, fd, data, count, offset);
}

int fsync(int fd) {
  static const auto real = next<int (*)(int)>("fsync");
  return synced(fd, real);
}

int fdatasync(int fd) {
  static const auto real = next<int (*)(int)>("fdatasync");
  return synced(fd, real);
}

}  // extern "C"
