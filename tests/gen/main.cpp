// lorakit-gen: writes a deterministic, realistic LoRA file (see tests/support/lora_gen.hpp).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "lora_gen.hpp"
#include "lorakit/error.hpp"

namespace {

using lorakit::testsupport::GenSpec;
using lorakit::testsupport::LokrMode;
using lorakit::testsupport::PeftMetadata;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lorakit-gen: write a deterministic, realistic LoRA file for tests and benchmarks"};
  GenSpec spec;
  std::string dtype = "fp16";
  std::string alpha_dtype;
  std::string lokr_mode = "w2";
  std::string peft_metadata = "none";
  double alpha = 0;
  double conv_alpha = 0;
  std::string output;
  bool force = false;
  bool no_te = false;
  bool no_metadata = false;

  app.add_option("--arch", spec.arch, "architecture: " + joined(lorakit::testsupport::arch_names()))
      ->capture_default_str();
  app.add_option("--family", spec.family, "naming family: " + joined(lorakit::testsupport::family_names()))
      ->capture_default_str();
  app.add_option("--kind", spec.kind, "module kind: " + joined(lorakit::testsupport::kind_names()))
      ->capture_default_str();
  app.add_option("--rank", spec.rank, "rank (inner dimension)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--conv-rank", spec.conv_rank, "rank of k>1 kernel modules (default: --rank)");
  auto* alpha_opt = app.add_option("--alpha", alpha, "alpha (default rank/2)");
  auto* conv_alpha_opt = app.add_option("--conv-alpha", conv_alpha, "alpha of k>1 kernel modules");
  app.add_option("--dtype", dtype, "factor dtype: fp16, bf16, fp32")->capture_default_str();
  app.add_option("--alpha-dtype", alpha_dtype, "alpha dtype (default: --dtype)");
  app.add_flag("--mixed-dtypes", spec.mixed_dtypes, "module factors cycle F16/BF16/F32, alpha F32");
  app.add_option("--seed", spec.seed, "random seed")->capture_default_str();
  app.add_option("--shrink", spec.shrink, "divide every width by this (fast tiny files)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--copies", spec.copies, "repeat the module list N times (a larger file, same largest module)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--conv", spec.conv, "include conv layers (3x3 resnets/samplers, conv3d patch embeddings)");
  app.add_flag("--tucker", spec.tucker, "Tucker cores on k>1 kernels (loha, lokr)");
  app.add_option("--lokr-mode", lokr_mode, "lokr: w2 (w2 decomposed), full, both")->capture_default_str();
  app.add_option("--lokr-factor", spec.lokr_factor, "lokr: LyCORIS factor (-1 balanced)")
      ->capture_default_str();
  app.add_flag("--no-te", no_te, "omit text-encoder modules (sd15, sdxl)");
  app.add_flag("--no-metadata", no_metadata, "omit ss_* / format metadata");
  app.add_option("--peft-metadata", peft_metadata,
                 "peft: none, plain, prefixed lora_adapter_metadata, or sidecar (raw adapter + adapter_config.json)")
      ->capture_default_str();
  app.add_flag("--rslora", spec.rslora, "peft config: use_rslora");
  app.add_option("--rank-cycle", spec.rank_cycle, "linear module i gets rank RANKS[i % n]");
  app.add_option("--alpha-cycle", spec.alpha_cycle, "linear module i gets alpha ALPHAS[i % n]");
  app.add_flag("--peft-infix", spec.peft_infix, "peft: base_model.model.<path>.lora_A.default.weight keys");
  app.add_flag("--passthrough", spec.passthrough, "add .diff_b, .bias and bundle_emb pass-through tensors");
  app.add_option("--dead-fraction", spec.dead_fraction, "probability of a near-dead module")
      ->capture_default_str();
  app.add_flag("--zero-module", spec.zero_module, "make the second module exactly zero");
  app.add_flag("--exact-spectrum", spec.exact_spectrum, "orthonormal singular vectors (small files only)");
  app.add_option("-o,--output", output, "output file")->required();
  app.add_flag("-f,--force", force, "overwrite an existing output");
  CLI11_PARSE(app, argc, argv);

  try {
    spec.dtype = lorakit::testsupport::parse_float_dtype(dtype);
    if (!alpha_dtype.empty()) spec.alpha_dtype = lorakit::testsupport::parse_float_dtype(alpha_dtype);
    if (alpha_opt->count() > 0) spec.alpha = alpha;
    if (conv_alpha_opt->count() > 0) spec.conv_alpha = conv_alpha;
    spec.text_encoder = !no_te;
    spec.metadata = !no_metadata;
    const std::map<std::string, LokrMode> modes = {
        {"w2", LokrMode::w2_decomposed}, {"full", LokrMode::full}, {"both", LokrMode::both_decomposed}};
    const std::map<std::string, PeftMetadata> peft = {
        {"none", PeftMetadata::none},
        {"plain", PeftMetadata::plain},
        {"prefixed", PeftMetadata::prefixed},
        {"sidecar", PeftMetadata::sidecar}};
    if (modes.count(lokr_mode) == 0 || peft.count(peft_metadata) == 0) {
      throw lorakit::Error(lorakit::ErrorCode::invalid_argument,
                           "lorakit-gen: bad --lokr-mode or --peft-metadata");
    }
    spec.lokr_mode = modes.at(lokr_mode);
    spec.peft_metadata = peft.at(peft_metadata);

    const auto start = std::chrono::steady_clock::now();
    const auto result = lorakit::testsupport::write_lora(spec, output, force);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    fmt::print("{} modules={} bytes={} seconds={:.2f}\n", result.path.string(), result.modules, result.bytes,
               elapsed.count());
    return 0;
  } catch (const lorakit::Error& e) {
    fmt::print(stderr, "lorakit-gen: error: {}\n", e.what());
    return e.code() == lorakit::ErrorCode::invalid_argument || e.code() == lorakit::ErrorCode::output_exists
               ? 2
               : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lorakit-gen: internal error: {}\n", e.what());
    return 1;
  }
}
