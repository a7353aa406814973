#include "resize_flags.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "lorakit/batch.hpp"
#include "lorakit/budget.hpp"
#include "lorakit/error.hpp"
#include "lorakit/units.hpp"

namespace lorakit::cli {
namespace {

DType parse_output_dtype(const std::string& name) {
  if (name == "fp16" || name == "float16" || name == "f16") return DType::F16;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  if (name == "fp32" || name == "float32" || name == "float" || name == "f32") return DType::F32;
  throw Error(ErrorCode::invalid_argument, fmt::format("--dtype: unknown type '{}' (keep, fp16, bf16, fp32)", name));
}

}  // namespace

void add_resize_flags(CLI::App& command, ResizeFlags& flags) {
  // Checked on the text, before conversion: CLI11 would wrap "-3" or 2^64 into a huge unsigned value.
  const CLI::Range rank_range(std::int64_t{1}, std::int64_t{1000000});
  command.add_option("--rank,--new_rank", flags.rank,
                     "Fixed rank N; with --method or a target, the largest rank allowed (default: each module's own)")
      ->check(rank_range);
  command.add_option("--conv-rank,--new_conv_rank", flags.conv_rank,
                     "The same for modules with a kernel (conv 1x1/kxk, conv3d); default: --rank")
      ->check(rank_range);
  command.add_option("--method,--dynamic_method", flags.method,
                     "Rank from each module's spectrum: sv_ratio, sv_fro, sv_cumulative (with --param), sv_knee")
      ->check(CLI::IsMember({"fixed", "sv_ratio", "sv_fro", "sv_cumulative", "sv_knee"}));
  command.add_option("--param,--dynamic_param", flags.param,
                     "Target of --method: sv_fro/sv_cumulative fraction in (0, 1], sv_ratio >= 1");
  command.add_option("--preset", flags.preset, "high | med | low: --method sv_fro --param 0.95 / 0.92 / 0.88")
      ->check(CLI::IsMember({"high", "med", "low"}));
  command.add_flag("--minimal", flags.minimal,
                   "Smallest rank that meets the target (without the reference's extra +1 rank)");
  command.add_option("--target-size", flags.target_size,
                     "Largest output file, header included: 50MB, 1.5GB, 800MiB or bytes; ranks chosen across the file");
  command.add_option("--target-ratio", flags.target_ratio, "Largest output as a fraction of the input's size, in (0, 1]");
  command.add_option("--target-retention", flags.target_retention,
                     "Smallest file whose --objective reaches this: 0.95, 95 or 95%");
  command.add_option("--objective", flags.objective,
                     "What a target keeps: mean (per-module Frobenius retention, default) or energy (of the whole file)")
      ->check(CLI::IsMember({"mean", "energy"}));
  command.add_flag("--allow-drop", flags.allow_drop, "A target may remove whole modules (rank 0); they are listed");
  command.add_option("--include", flags.include, "Resize only modules whose name matches REGEX (repeatable); others are excluded");
  command.add_option("--exclude", flags.exclude, "Write modules whose name matches REGEX back unresized (repeatable)");
  command.add_option("--drop", flags.drop, "Remove modules whose name matches REGEX from the output (repeatable)");
  command.add_option("--min-rank", flags.min_rank, "No module resized below rank N (nor above its own)")->check(rank_range);
  command.add_option("--max-rank", flags.max_rank, "No module written above rank N")->check(rank_range);
  command.add_option("--dtype,--save_precision", flags.dtype,
                     "Output dtype of module factors: keep (default), fp16, bf16, fp32; pass-through tensors are never converted");
  command.add_option("--threads", flags.threads, "Worker threads (default: all cores)")->check(CLI::Range(std::int64_t{0}, std::int64_t{4096}));
  command.add_flag("--to-lora", flags.to_lora, "Write LoHa/LoKr modules as plain LoRA even when that is larger");
  command.add_flag("--keep-lycoris", flags.keep_lycoris, "Pass LoHa/LoKr modules through unresized");
  command.add_option("--device", flags.device, "Accepted for compatibility and ignored: lorakit runs on the CPU");
}

namespace {

void fail(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

// --target-size / --target-ratio / --target-retention / --objective / --allow-drop; true when a target is set.
bool apply_target(const ResizeFlags& flags, ResizeOptions& options) {
  if (!flags.target_size.empty()) options.target_size = parse_size(flags.target_size, "--target-size");
  options.target_ratio = flags.target_ratio;
  if (!flags.target_retention.empty()) {
    options.target_retention = batch::parse_retention(flags.target_retention);
  }
  const bool target = has_target(options);
  if (!flags.objective.empty()) {
    if (!target) fail("--objective applies to --target-size, --target-ratio and --target-retention");
    options.objective = *parse_objective(flags.objective);
  }
  options.allow_drop = flags.allow_drop;
  return target;
}

void apply_method(ResizeFlags flags, bool target, ResizeOptions& options) {
  if (!flags.preset.empty()) {
    if (target) fail("--preset and a target (--target-size, --target-ratio, --target-retention) exclude each other");
    apply_preset(*parse_preset(flags.preset), flags.method, flags.param);
  }
  if (!flags.method.empty() && flags.method != "fixed") {
    if (target) fail(fmt::format("a target chooses every rank itself: give it without --method {}", flags.method));
    options.method = *parse_rank_method(flags.method);
    if (takes_param(options.method)) {
      if (!flags.param) fail(fmt::format("--method {} needs --param", flags.method));
      options.param = *flags.param;
    } else if (flags.param) {
      fail(fmt::format("--method {} takes no --param", flags.method));
    }
  } else if (flags.param) {
    fail("--param needs --method sv_ratio, sv_fro or sv_cumulative");
  } else if (!flags.rank && !target) {
    fail("say how to choose ranks: --rank N, --method M, --preset P, or a target (--target-size, --target-ratio, "
         "--target-retention)");
  }
}

}  // namespace

ResizeOptions to_resize_options(const ResizeFlags& flags) {
  ResizeOptions options;
  options.rank = flags.rank;
  options.conv_rank = flags.conv_rank;
  apply_method(flags, apply_target(flags, options), options);
  options.minimal = flags.minimal;
  options.include = flags.include;
  options.exclude = flags.exclude;
  options.drop = flags.drop;
  options.min_rank = flags.min_rank;
  options.max_rank = flags.max_rank;
  if (flags.dtype != "keep" && flags.dtype != "None") options.dtype = parse_output_dtype(flags.dtype);
  options.threads = flags.threads;
  options.to_lora = flags.to_lora;
  options.keep_lycoris = flags.keep_lycoris;
  return options;
}

std::optional<std::string> device_note(const ResizeFlags& flags) {
  if (flags.device.empty()) return std::nullopt;
  return fmt::format("--device {} ignored: lorakit computes exactly on the CPU", flags.device);
}

}  // namespace lorakit::cli
