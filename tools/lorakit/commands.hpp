#pragma once
// Subcommands of the lorakit CLI, one file each: an options struct, setup_<name>() which registers
// the subcommand and its flags, and a run function. setup_<name>() stores the run function in
// `action`, so that main() runs it inside the single try/catch that maps errors to exit codes.
#include <functional>

#include <CLI/CLI.hpp>

namespace lorakit::cli {

using Action = std::function<int()>;  // returns the process exit code

void setup_resize(CLI::App& app, Action& action);
void setup_inspect(CLI::App& app, Action& action);
void setup_batch(CLI::App& app, Action& action);

// Exit codes (documented in the README).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the job failed (bad input, I/O error) or, in batch, some files failed
inline constexpr int kExitUsage = 2;    // bad command line, or a refused request (output exists, input == output)
// 128 + signal (130, 143): stopped by SIGINT/SIGTERM, nothing written (lorakit::interrupted_exit_code).

}  // namespace lorakit::cli
