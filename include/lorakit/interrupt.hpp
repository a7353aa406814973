#pragma once
// SIGINT / SIGTERM as a request to stop: the handlers only record the signal; long jobs poll it at
// their progress points and unwind with Error(ErrorCode::interrupted), so every temporary file is
// removed on the way out. A second signal terminates the process at once (the default action).
namespace lorakit {

void install_stop_handlers();
void request_stop(int signal);  // what the handlers do; async-signal-safe; the first signal wins
int stop_signal();              // the signal received, 0 if none
void clear_stop();
// Throws Error(ErrorCode::interrupted) naming the signal when one was received.
void throw_if_stopped();
// The process exit status for a stop by `signal`: 128 + signal (130 SIGINT, 143 SIGTERM).
int interrupted_exit_code(int signal);

}  // namespace lorakit
