#include "resize_flags.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "lorakit/error.hpp"

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
                     "Fixed rank N; with --method, the largest rank allowed (default: each module's own)")
      ->check(rank_range);
  command.add_option("--conv-rank,--new_conv_rank", flags.conv_rank,
                     "The same for modules with a kernel (conv 1x1/kxk, conv3d); default: --rank")
      ->check(rank_range);
  command.add_option("--method,--dynamic_method", flags.method, "Rank from the spectrum: sv_ratio, sv_fro, sv_cumulative")
      ->check(CLI::IsMember({"fixed", "sv_ratio", "sv_fro", "sv_cumulative"}));
  command.add_option("--param,--dynamic_param", flags.param,
                     "Target of --method: sv_fro/sv_cumulative fraction in (0, 1], sv_ratio >= 1");
  command.add_flag("--minimal", flags.minimal,
                   "Smallest rank that meets the target (without the reference's extra +1 rank)");
  command.add_option("--dtype,--save_precision", flags.dtype,
                     "Output dtype of module factors: keep (default), fp16, bf16, fp32; pass-through tensors are never converted");
  command.add_option("--threads", flags.threads, "Worker threads (default: all cores)")->check(CLI::Range(std::int64_t{0}, std::int64_t{4096}));
  command.add_flag("--to-lora", flags.to_lora, "Write LoHa/LoKr modules as plain LoRA even when that is larger");
  command.add_flag("--keep-lycoris", flags.keep_lycoris, "Pass LoHa/LoKr modules through unresized");
  command.add_option("--device", flags.device, "Accepted for compatibility and ignored: lorakit runs on the CPU");
}

ResizeOptions to_resize_options(const ResizeFlags& flags) {
  ResizeOptions options;
  options.rank = flags.rank;
  options.conv_rank = flags.conv_rank;
  if (!flags.method.empty() && flags.method != "fixed") {
    options.method = *parse_rank_method(flags.method);
    if (!flags.param) throw Error(ErrorCode::invalid_argument, fmt::format("--method {} needs --param", flags.method));
    options.param = *flags.param;
  } else if (flags.param) {
    throw Error(ErrorCode::invalid_argument, "--param needs --method sv_ratio, sv_fro or sv_cumulative");
  } else if (!flags.rank) {
    throw Error(ErrorCode::invalid_argument, "say how to choose ranks: --rank N, or --method M --param P");
  }
  options.minimal = flags.minimal;
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
