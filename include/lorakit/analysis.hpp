#pragma once
// What a LoRA can become: every module's exact spectrum, read once, and from it the size ↔ retention
// trade-off — the budget allocation's optimal curve for both objectives, the presets and sv_fro
// thresholds on it, the ranks each block needs, and the modules that carry almost nothing. Every size
// given for a preset or a target is the exact size `lorakit resize` writes with those options.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/budget.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"

namespace lorakit {

inline constexpr double kRetentionLevels[] = {0.90, 0.95, 0.99};  // ranks_needed[i] is for this fro retention
inline constexpr std::uint64_t kDeadWeightRank = 3;               // 95% with at most this many ranks: dead weight

struct ModuleAnalysis {
  std::string stem;
  std::string kind;                            // module_kind_name
  std::vector<std::uint64_t> weight_shape;
  std::uint64_t rank = 0;                      // as stored (LyCORIS: its rank bound)
  std::uint64_t bytes = 0;                     // what its tensors hold in the file
  double energy = 0.0;                         // ‖ΔW‖²_F as loaders scale it
  double energy_share = 0.0;                   // of the file's total; NaN when not measured
  // Smallest rank whose fro retention reaches 90 / 95 / 99%; none for a zero module or one that could not
  // be measured (non-finite factors).
  std::optional<std::uint64_t> ranks_needed[3];
  bool dead = false;                           // ranks_needed for 95% ≤ kDeadWeightRank
  std::string component;                       // "" for the denoiser, "te", "te1", … for a text encoder
  std::string block;                           // heat-map row: "down 1", "mid", "double 7", "te1 layer 3", "other"
  std::string part;                            // heat-map column within the block: "attn1_to_q", "linear1"
};

struct CurvePoint {
  std::uint64_t bytes = 0;   // output file size (data exact; header as laid out at the smallest file)
  double retention = 0.0;    // the objective as the report computes it
};

// A point a set of options produces, measured exactly (what `lorakit resize --dry-run` reports).
struct MarkedPoint {
  std::string label;         // "high", "sv_fro 0.90", "target 25%", "target 95% mean", ...
  std::string options;       // the command-line flags that produce it, e.g. "--preset high"
  std::uint64_t bytes = 0;
  double mean = 0.0;         // average Frobenius retention
  double energy = 0.0;       // energy-weighted retention
};

// One per component: the denoiser ("UNet" or "transformer"), then each text encoder ("text encoder te1").
struct HeatMap {
  std::string title;
  std::vector<std::string> rows;                            // blocks, in the architecture's order
  std::vector<std::string> columns;                         // parts, in first-seen order
  std::vector<std::vector<std::optional<double>>> rank_95;  // [row][column]: mean rank needed for 95%
  std::vector<std::vector<std::size_t>> modules;            // [row][column]: how many modules the cell holds
};

struct Analysis {
  Inspection inspection;
  std::vector<ModuleAnalysis> modules;     // in file order (by stem)
  std::vector<CurvePoint> mean_curve;      // budget allocation, objective mean: the best mean for each size
  std::vector<CurvePoint> energy_curve;    // objective energy
  std::vector<MarkedPoint> presets;        // high, med, low
  std::vector<MarkedPoint> sv_fro;         // sv_fro at several thresholds
  std::vector<MarkedPoint> targets;        // the budget allocation at the presets' sizes and at common targets
  std::uint64_t dead_bytes = 0;            // Σ bytes of the dead-weight modules
  double dead_share = 0.0;                 // of the file's size
  std::vector<HeatMap> heat_maps;
  std::vector<std::string> notes;          // e.g. modules that could not be measured
};

// Reads every module's spectrum (threads: 0 = all cores) and computes the analysis; `sidecar` is the PEFT
// adapter_config.json that scales the file's PEFT modules. Throws lorakit::Error.
Analysis analyze_file(const std::filesystem::path& input, unsigned threads = 0, const PeftSidecar* sidecar = nullptr);

// The modules by energy share, largest first (unmeasured ones last); the dead-weight modules, largest first.
std::vector<const ModuleAnalysis*> modules_by_energy(const Analysis& analysis);
std::vector<const ModuleAnalysis*> dead_weight(const Analysis& analysis);

void print_analysis(std::ostream& out, const Analysis& analysis);  // the terminal summary
std::string analysis_json(const Analysis& analysis);              // pretty JSON, NaN as null
// One self-contained page (inline SVG and CSS, no scripts or fonts from anywhere), light and dark mode.
std::string analysis_html(const Analysis& analysis);

// One file of a collection's overview page (`batch --html`).
struct OverviewRow {
  std::string name;                          // the file's path below its input folder
  std::string status;                        // the batch status: "ok", "discarded", "failed", ...
  std::string message;
  std::uint64_t input_bytes = 0;
  std::optional<std::uint64_t> output_bytes;
  std::optional<double> retention;           // the result's average Frobenius retention
  std::string page;                          // link to the file's own analysis page, relative; "" for none
  std::vector<CurvePoint> curve;             // the input's mean curve (sparkline); empty without an analysis
};
// The overview: one row per file, with a sparkline of its curve and the written result on it.
std::string overview_html(std::string_view title, const std::vector<OverviewRow>& rows);

// Writes a page to `output` atomically (temp file, fsync, rename). Refuses to replace `input`, the file
// the page is about (Error::same_file), and an existing file unless `overwrite` (Error::output_exists).
void write_page(const std::filesystem::path& output, std::string_view page, bool overwrite,
                const std::filesystem::path& input = {});

}  // namespace lorakit
