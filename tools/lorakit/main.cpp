// lorakit: make diffusion LoRA files small without changing what they do.
#include <cstdio>
#include <exception>

#include <fmt/core.h>

#include "commands.hpp"
#include "lorakit/error.hpp"
#include "lorakit/interrupt.hpp"

namespace {

int exit_code_for(lorakit::ErrorCode code) {
  switch (code) {
    case lorakit::ErrorCode::invalid_argument:
    case lorakit::ErrorCode::output_exists:
    case lorakit::ErrorCode::same_file:
      return lorakit::cli::kExitUsage;
    case lorakit::ErrorCode::interrupted:
      return lorakit::interrupted_exit_code(lorakit::stop_signal());
    default:
      return lorakit::cli::kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lorakit: resize diffusion LoRA files exactly, in factor space, on a CPU"};
  app.set_version_flag("--version", "lorakit " LORAKIT_VERSION);
  app.require_subcommand(1);
  lorakit::cli::Action action;
  lorakit::cli::setup_resize(app, action);
  lorakit::cli::setup_inspect(app, action);
  lorakit::cli::setup_batch(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : lorakit::cli::kExitUsage;
  }
  try {
    return action ? action() : lorakit::cli::kExitUsage;
  } catch (const lorakit::Error& e) {
    fmt::print(stderr, "lorakit: error: {}\n", e.what());
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "lorakit: internal error: {}\n", e.what());
    return lorakit::cli::kExitFailure;
  }
}
