#include "lorakit/interrupt.hpp"

#include <atomic>
#include <csignal>
#include <cstring>
#include <string>

#include "lorakit/error.hpp"

namespace lorakit {
namespace {

std::atomic<int> stop_requested{0};
static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");

void set_handlers(void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

extern "C" void on_stop_signal(int signal) {
  request_stop(signal);
  set_handlers(SIG_DFL);  // a second Ctrl-C ends the process at once
}

}  // namespace

void install_stop_handlers() { set_handlers(on_stop_signal); }

void request_stop(int signal) {
  int none = 0;
  stop_requested.compare_exchange_strong(none, signal);
}

int stop_signal() { return stop_requested.load(); }

void clear_stop() { stop_requested.store(0); }

void throw_if_stopped() {
  const int signal = stop_signal();
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    throw Error(ErrorCode::interrupted, std::string("stopped by SIG") + (name != nullptr ? name : "?") +
                                            " before the work was complete");
  }
}

int interrupted_exit_code(int signal) { return 128 + (signal != 0 ? signal : SIGINT); }

}  // namespace lorakit
