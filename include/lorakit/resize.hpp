#pragma once
// The resize job: read a LoRA once, choose each module's rank from its exact factor-space spectrum,
// and stream a new file in the same format, keeping what loaders compute.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/budget.hpp"
#include "lorakit/dtype.hpp"
#include "lorakit/rank_policy.hpp"

namespace lorakit {

// Memory a resize holds besides its per-thread working set (callers that schedule several resizes
// budget with these): resized factors computed early in pass 1, and produced-but-unwritten tensors in
// pass 2. Neither exceeds the output's size.
inline constexpr std::uint64_t kResizeEarlyFactorBudget = std::uint64_t{96} << 20;
inline constexpr std::uint64_t kResizeWriteBudget = std::uint64_t{64} << 20;

struct ResizeOptions {
  RankMethod method = RankMethod::fixed;
  double param = 0.0;
  std::optional<std::size_t> rank;       // --rank: fixed rank, or cap for the other methods and targets
  std::optional<std::size_t> conv_rank;  // --conv-rank: the same for modules with a kernel (default: rank)
  bool minimal = false;
  // Size and quality targets (at most one; they replace `method`): every module's rank is chosen across
  // the whole file, by value per byte (lorakit/budget.hpp).
  std::optional<std::uint64_t> target_size;  // the output file, header included, is at most this many bytes
  std::optional<double> target_ratio;        // (0, 1]: target_size = ratio × the input's size, rounded down
  std::optional<double> target_retention;    // (0, 1]: the smallest file whose objective reaches this
  Objective objective = Objective::mean;
  bool allow_drop = false;                   // a target may give a module rank 0: it is removed
  // Module filters, for every method. Patterns are ECMAScript regular expressions searched for in the
  // module's name (its stem, as `--verbose` prints it); a module matching any pattern of a list matches it.
  std::vector<std::string> include;          // when given, modules matching none are excluded
  std::vector<std::string> exclude;          // excluded: written back unresized, as they are
  std::vector<std::string> drop;             // removed from the output
  std::optional<std::size_t> min_rank;       // no module resized below this (nor above its own rank)
  std::optional<std::size_t> max_rank;       // no module written above this (every method)
  std::optional<DType> dtype;            // output float dtype; none = keep each tensor's own
  unsigned threads = 0;                  // 0 = all cores
  bool force = false;                    // overwrite an existing output
  bool to_lora = false;                  // write LyCORIS modules as plain LoRA even when larger
  bool keep_lycoris = false;             // pass LyCORIS modules through unresized
  // PEFT adapter_config.json that scales the input's PEFT modules; default: the one beside an input
  // named adapter_model.safetensors. Its rewrite for the new ranks is written beside the output.
  std::optional<std::filesystem::path> peft_config;
  // Progress: called from the calling thread with (done, total) units of work.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

// The rank rule a module gets under these options.
RankRule rank_rule_for(const ResizeOptions& options, bool has_kernel);
// Whether the options set a size or quality target.
bool has_target(const ResizeOptions& options);

enum class ModuleOutcome {
  resized,      // written at a lower rank
  unchanged,    // chosen rank ≥ current: re-emitted as it was
  kept,         // LyCORIS module kept in its own form (smaller than its LoRA form), or --keep-lycoris
  excluded,     // --exclude / not --include: re-emitted as it was
  dropped,      // --drop, or rank 0 under a target with --allow-drop: not written
};
std::string_view module_outcome_name(ModuleOutcome outcome);

struct ModuleReport {
  std::string stem;
  std::string kind;                     // module_kind_name
  std::string family;
  std::vector<std::uint64_t> weight_shape;
  std::uint64_t old_rank = 0;
  std::uint64_t new_rank = 0;          // 0 when dropped
  ModuleOutcome outcome = ModuleOutcome::resized;
  // NaN for a zero module, and for a module removed by --drop (not measured; the summary leaves it out).
  // A module a target drops keeps 0.
  double sum_retained = 1.0;
  double fro_retained = 1.0;
  double max_ratio = 1.0;
  double energy = 0.0;                  // ‖ΔW‖²_F (scaled), for the energy-weighted retention
  std::optional<double> old_alpha;
  std::optional<double> new_alpha;
  std::uint64_t nonfinite = 0;          // NaN/Inf values found in the module's factors
  std::string note;                     // e.g. "approximate (DoRA)", "dense SVD fallback", why kept
};

struct ResizeReport {
  std::string input;
  std::string output;
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
  std::vector<ModuleReport> modules;
  std::vector<std::string> passthrough;  // tensor names copied byte-identical
  std::size_t resized = 0, unchanged = 0, kept = 0, excluded = 0, dropped = 0;
  double average_fro = 0.0;              // reference: unweighted mean of fro_retained, NaN excluded
  double std_fro = 0.0;                  // population std, NaN excluded
  double energy_weighted_fro = 0.0;      // √(Σ retained energy / Σ energy)
  std::uint64_t nonfinite = 0;
  double seconds = 0.0;
  std::vector<std::string> notes;        // file-level notes (e.g. --device ignored, DoRA approximate)
  std::optional<std::uint64_t> target_bytes;  // --target-size / --target-ratio, in bytes
};

// Resizes `input` into `output`. Throws lorakit::Error. Never modifies `input`; refuses
// output == input (Error::same_file) and an existing output unless options.force
// (Error::output_exists); the output appears atomically (temp file, fsync, rename).
// PEFT adapters: a folder `input` is the PEFT adapter folder it names, and `output` is then a folder
// (created when missing) that receives adapter_model.safetensors. When a PEFT config scales the input
// (options.peft_config, or adapter_config.json beside an input named adapter_model.safetensors), its
// rewrite for the new ranks is written to adapter_config.json beside the output, after the weights;
// both are refused before anything is written when they exist without options.force, and the rewrite
// never replaces the input's own config (Error::same_file).
ResizeReport resize_file(const std::filesystem::path& input, const std::filesystem::path& output,
                         const ResizeOptions& options);

// Plans only: every module's spectrum, chosen rank and retention, and the exact output size,
// without writing anything. Used by `--dry-run` and batch quality gates. Reads folders and PEFT
// configs as resize_file does.
ResizeReport plan_file(const std::filesystem::path& input, const ResizeOptions& options);

// The same on a whole safetensors file image in memory (e.g. a trainer's serialized state dict), with
// no file touched: `name` stands for the input in messages and in the report. The output bytes equal
// those resize_file writes for the same input and options.
struct ResizedBytes {
  std::vector<std::byte> bytes;
  ResizeReport report;
};
ResizedBytes resize_bytes(std::span<const std::byte> input, const ResizeOptions& options,
                          std::string_view name = "<memory>");
ResizeReport plan_bytes(std::span<const std::byte> input, const ResizeOptions& options,
                        std::string_view name = "<memory>");

}  // namespace lorakit
