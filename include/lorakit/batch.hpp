#pragma once
// lorakit batch: resize whole LoRA collections. Scans files, folders and globs into a list of items
// (each with its output path mirroring the input tree), takes a stable shard of them, evaluates quality
// gates on the exact plan before writing, runs several files at once within a memory budget, survives
// interruption (outputs appear atomically; leftovers of a killed run are removed on the next run) and
// reports one row per file. Per-file failures are recorded, never thrown.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lorakit/interrupt.hpp"
#include "lorakit/resize.hpp"

namespace lorakit::batch {

// ---- Inputs --------------------------------------------------------------------------------------

struct ScanOptions {
  std::vector<std::string> inputs;      // files, folders, or glob patterns the shell did not expand
  bool recursive = false;               // descend into sub-folders of input folders
  std::filesystem::path output_dir;     // OUTDIR; empty with in_place
  bool in_place = false;                // output = input
  std::string suffix;                   // inserted before ".safetensors" in output names ("_r")
};

struct Item {
  std::filesystem::path input;
  std::string relative;                 // '/'-separated path below its input folder (a file given by name: its name)
  std::filesystem::path output;         // OUTDIR/relative (suffix applied), or the input itself in place
  bool is_safetensors = false;          // by extension (".safetensors", any case)
  std::string problem;                  // set when the item cannot be processed (output collision, ...)
};

// Expands the inputs into items sorted by relative path. A folder contributes its files (all levels
// with `recursive`); OUTDIR and everything below it are never scanned (inputs given inside it are
// left out); files named like lorakit's temporary files are ignored. Throws Error(invalid_argument)
// for an input that does not exist, a pattern that matches nothing, every input inside OUTDIR, or
// -o together with in_place, or a suffix in place or with a '/'.
std::vector<Item> scan_inputs(const ScanOptions& options);

// Removes, from each item's output folder, the leftovers of a killed run that belong to that item's
// output name only (so that concurrent shards writing into the same folders never touch each other's
// files), and only those no live writer holds (lorakit/atomic_file.hpp). Returns what was removed.
std::vector<std::filesystem::path> remove_leftover_temp_files(const std::vector<Item>& items);

// ---- Sharding ------------------------------------------------------------------------------------

struct Shard {
  std::uint64_t index = 0;
  std::uint64_t count = 1;
};

std::uint64_t fnv1a64(std::string_view text);  // FNV-1a, 64 bit: stable across builds and machines
// "I/N" with 0 <= I < N. Throws Error(invalid_argument).
Shard parse_shard(std::string_view text);
// --shard auto: Slurm job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN,
// SLURM_ARRAY_TASK_STEP), else a Kubernetes Indexed Job (JOB_COMPLETION_INDEX with the shard count in
// LORAKIT_SHARD_COUNT). Throws Error(invalid_argument) when neither is set or they are inconsistent.
using Environment = std::function<std::optional<std::string>(const char* name)>;
Shard shard_from_environment(const Environment& environment);
Environment process_environment();
// An item belongs to shard I/N when fnv1a64(relative) mod N == I.
bool in_shard(std::string_view relative, const Shard& shard);
std::vector<Item> select_shard(std::vector<Item> items, const Shard& shard);

// ---- Quality gates ------------------------------------------------------------------------------

// Presets (high / med / low) are lorakit::Preset (rank_policy.hpp), shared with `resize`.

enum class OnDiscard { skip, copy };
std::optional<OnDiscard> parse_on_discard(std::string_view name);

struct Gates {
  std::optional<double> min_retention;  // fraction 0..1 of the average Frobenius retention
  std::optional<double> min_saving;     // fraction 0..1 of the input size
  OnDiscard on_discard = OnDiscard::skip;
  bool active() const { return min_retention || min_saving; }
};
// "0.87", "87%" and "87" all mean 0.87: a number above 1 or with '%' is a percentage.
double parse_retention(std::string_view text);
// "20" and "20%" mean 20%: always a percentage. Returns the fraction (0.2).
double parse_saving(std::string_view text);
// Why the planned result is discarded, or nothing when it passes. A file whose retention is unknown
// (all modules zero) passes the retention gate.
std::optional<std::string> discard_reason(const ResizeReport& plan, const Gates& gates);

// ---- Scheduling ----------------------------------------------------------------------------------

// "4G", "512M", "1.5GiB", "800MB", "123456" (bytes). Units are binary (K = 1024). Throws Error(invalid_argument).
std::uint64_t parse_memory(std::string_view text);
unsigned available_cores();  // CPUs this process may run on (affinity mask, so Slurm/cgroup limits count)
// --threads for each file: `requested` when given (> 0), else max(1, cores / jobs).
unsigned threads_per_file(unsigned requested, unsigned jobs, unsigned cores);
// Estimated peak memory of resizing `input` with `threads` threads: the resize
// engine's write buffer (the file size, at most 64 MiB) plus, per thread, 32 bytes per element of the
// largest tensor (LoHa factors count r times: they enter a face-splitting product). Measured peaks
// are below this (a 613 MB Flux LoRA, 2 threads: 83 MB measured, 152 MB estimated). A file whose
// header cannot be read is estimated at its size.
std::uint64_t estimate_peak_memory(const std::filesystem::path& input, unsigned threads);

// Admission under --max-memory: a file starts when the running estimates plus its own fit, or when
// nothing else runs (so that one file always runs).
class MemoryBudget {
 public:
  explicit MemoryBudget(std::optional<std::uint64_t> limit) : limit_(limit) {}
  bool can_start(std::uint64_t estimate) const;
  void start(std::uint64_t estimate);
  void finish(std::uint64_t estimate);
  std::uint64_t in_use() const { return in_use_; }

 private:
  std::optional<std::uint64_t> limit_;
  std::uint64_t in_use_ = 0;
  std::size_t running_ = 0;
};

// ---- Results and reports -------------------------------------------------------------------------

enum class Status { ok, exists, skipped, discarded, failed, interrupted };
inline constexpr std::size_t kStatusCount = 6;
std::string_view status_name(Status status);

struct RankStats {
  std::uint64_t min = 0;
  double median = 0.0;  // mean of the two middle ranks for an even count
  std::uint64_t max = 0;
};
// Of the modules' ranks as written (new_rank); nothing for a report without modules.
std::optional<RankStats> rank_stats(const ResizeReport& report);

struct FileResult {
  std::size_t index = 0;                     // position in the run's item list
  std::string input;
  std::string output;                        // empty when nothing was written
  Status status = Status::failed;
  std::uint64_t input_bytes = 0;
  std::optional<std::uint64_t> output_bytes;  // discarded: the size the resized file would have had
  std::optional<double> retention;            // average Frobenius retention, fraction
  std::optional<RankStats> ranks;
  double seconds = 0.0;
  std::string message;                        // error, or why skipped / discarded
};

std::string csv_header();
std::string csv_row(const FileResult& result);    // RFC 4180 quoting, no line end
std::string jsonl_row(const FileResult& result);  // one JSON object, no line end

// Writes one row per finished file as it finishes (so an interrupted run keeps its rows), in the
// format named by the extension: ".jsonl" or ".csv" (with a header line). Throws Error.
class ReportWriter {
 public:
  explicit ReportWriter(const std::filesystem::path& path);
  ~ReportWriter();
  ReportWriter(const ReportWriter&) = delete;
  ReportWriter& operator=(const ReportWriter&) = delete;
  void write(const FileResult& result);

 private:
  std::filesystem::path path_;
  bool csv_ = false;
  std::FILE* file_ = nullptr;
};
// Throws Error(invalid_argument) unless the extension is .jsonl or .csv.
void check_report_path(const std::filesystem::path& path);

struct Summary {
  std::size_t total = 0;                      // items in this run (after sharding)
  std::array<std::size_t, kStatusCount> counts{};
  std::uint64_t bytes_in = 0;                 // ok files: input sizes
  std::uint64_t bytes_out = 0;                // ok files: output sizes
  double seconds = 0.0;
  int signal = 0;                             // SIGINT / SIGTERM that stopped the run, 0 if none
  std::size_t count(Status status) const { return counts[static_cast<std::size_t>(status)]; }
};
void print_summary(std::FILE* out, const Summary& summary);
// 128 + signal when interrupted; 1 when some file failed; else 0.
int exit_code(const Summary& summary);

std::string format_duration(double seconds);   // "12.3 s", "4 min 05 s", "2 h 07 min"

// ---- Running -------------------------------------------------------------------------------------

struct Options {
  ScanOptions scan;
  ResizeOptions resize;                     // resize.threads: per file; 0 = available_cores() / jobs
  bool force = false;                       // redo outputs that exist
  unsigned jobs = 1;
  std::optional<std::uint64_t> max_memory;
  Gates gates;
  std::optional<Shard> shard;
  bool backup = true;                       // in place: keep NAME.bak
  bool nice = false;                        // lower CPU and I/O priority of the whole run
  std::filesystem::path report;             // empty: no report file
  // Overview page (one row per file, lorakit/analysis.hpp) and, in the folder NAME_files beside it, each
  // input's own analysis page; both replaced by each run, like the report. Empty: no pages.
  std::filesystem::path html;
};

// Called with the run's lock held, so from one thread at a time (but not always the same thread).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void begin(const std::vector<Item>& items, std::uint64_t total_bytes) { (void)items, (void)total_bytes; }
  virtual void started(const Item& item, std::size_t index) { (void)item, (void)index; }
  // fraction of one running file's work done (0..1), as reported by the resize engine.
  virtual void progress(std::size_t index, double fraction) { (void)index, (void)fraction; }
  virtual void finished(const FileResult& result) { (void)result; }
  virtual void end(const Summary& summary) { (void)summary; }
};

// Scans, shards, removes leftovers of killed runs, processes every item and writes the report.
// Throws Error only for usage problems found before any file is touched (bad inputs, report path);
// everything that goes wrong with one file is recorded in its result.
Summary run_batch(const Options& options, Observer& observer);

// One overall bar redrawn in place on a terminal, or one plain line per finished file.
std::unique_ptr<Observer> make_progress_printer(std::FILE* out, bool terminal);

// SIGINT / SIGTERM (lorakit/interrupt.hpp): stop starting files, abort running ones at their next
// progress report (their temporary files are removed as the stack unwinds) and return from run_batch
// with Summary::signal set. A second signal terminates the process at once.
using lorakit::clear_stop;
using lorakit::install_stop_handlers;
using lorakit::request_stop;
using lorakit::stop_signal;

// Lowers the calling thread's (and so every thread it creates afterwards) CPU priority to nice 10 and
// its I/O priority to best-effort level 7. Returns false if the system refused either.
bool lower_priority();

}  // namespace lorakit::batch
