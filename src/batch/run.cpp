// The batch engine: a pool of `jobs` workers takes items in order, each within the memory budget, and
// turns every item into a result; nothing a single file does can stop the others.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "batch/files.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/analysis.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "lorakit/interrupt.hpp"

namespace lorakit::batch {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStopPoll = std::chrono::milliseconds(100);  // signal handlers cannot notify a condition variable

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::uint64_t size_or_zero(const fs::path& path) {
  std::error_code error;
  const std::uint64_t size = fs::file_size(path, error);
  return error ? 0 : size;
}

void fill_from_report(FileResult& result, const ResizeReport& report) {
  result.output_bytes = report.output_bytes;
  result.retention = std::isfinite(report.average_fro) ? std::optional(report.average_fro) : std::nullopt;
  result.ranks = rank_stats(report);
}

fs::path backup_path(const fs::path& input) { return fs::path(input.string() + ".bak"); }

// A PEFT folder's config is not an item of its own: it travels with its adapter_model.safetensors.
std::string skip_message(const fs::path& input) {
  std::error_code error;
  if (input.filename() == kPeftConfigName && fs::is_regular_file(input.parent_path() / kPeftWeightsName, error)) {
    return "the PEFT config of adapter_model.safetensors: rewritten beside that file's output";
  }
  return "not a .safetensors file";
}

// Removes a file on scope exit unless released (the in-place temporary result).
class RemoveOnExit {
 public:
  explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (!path_.empty()) {
      std::error_code error;
      fs::remove(path_, error);
    }
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (error) {
    throw Error(ErrorCode::io_write, to.string(), "", "cannot replace the file: " + error.message());
  }
}

// Keeps the original as NAME.bak: a hard link where the file system allows one, else a copy.
void make_backup(const fs::path& input, const fs::path& backup) {
  if (::link(input.c_str(), backup.c_str()) == 0) {
    return;
  }
  if (errno == EEXIST) {
    throw Error(ErrorCode::output_exists, backup.string(), "", "backup exists");
  }
  copy_atomically(input, backup, false);
}

// The folder of the per-file pages beside the overview page NAME.html: NAME_files.
fs::path pages_folder(const fs::path& overview) {
  return overview.parent_path() / (overview.stem().string() + "_files");
}

// What a file contributes to the overview page besides its result.
struct FilePage {
  std::string link;               // relative to the overview; "" when the file has no page
  std::vector<CurvePoint> curve;  // the input's mean curve
};

class FileJob {
 public:
  FileJob(const Options& options, const Item& item, ResizeOptions resize)
      : options_(options), item_(item), resize_(std::move(resize)) {}

  const FilePage& page() const { return page_; }

  FileResult run(std::size_t index) {
    const Clock::time_point start = Clock::now();
    result_.index = index;
    result_.input = item_.input.string();
    result_.input_bytes = size_or_zero(item_.input);
    try {
      run_checked();
    } catch (const Error& error) {
      if (error.code() == ErrorCode::interrupted) {
        finish(Status::interrupted, "stopped by a signal before it finished");
      } else if (error.code() == ErrorCode::not_an_adapter) {
        finish(Status::skipped, "not a LoRA (no adapter module)");
      } else {
        finish(Status::failed, error.what());
      }
      result_.output.clear();
    } catch (const std::exception& error) {
      finish(Status::failed, std::string("internal error: ") + error.what());
      result_.output.clear();
    }
    result_.seconds = seconds_since(start);
    return std::move(result_);
  }

 private:
  void finish(Status status, std::string message) {
    result_.status = status;
    result_.message = std::move(message);
  }

  void run_checked() {
    if (!item_.problem.empty()) {
      return finish(Status::failed, item_.problem);
    }
    if (!item_.is_safetensors) {
      return finish(Status::skipped, skip_message(item_.input));
    }
    throw_if_stopped();  // abandons the file (Error::interrupted) once the run is stopped
    sidecar_ = peft_sidecar_path(item_.input);
    if (!options_.html.empty()) write_page_of_input();
    if (options_.scan.in_place) {
      run_in_place();
    } else {
      run_to_output();
    }
  }

  // Analyses the input before anything replaces it (in place) and writes its page.
  void write_page_of_input() {
    const std::optional<PeftSidecar> sidecar = sidecar_ ? std::optional(read_peft_sidecar(*sidecar_)) : std::nullopt;
    const Analysis analysis = analyze_file(item_.input, resize_.threads, sidecar ? &*sidecar : nullptr);
    const std::string link = pages_folder(options_.html).filename().string() + "/" + item_.relative + ".html";
    const fs::path page = options_.html.parent_path() / link;
    std::error_code error;
    fs::create_directories(page.parent_path(), error);
    if (error) {
      throw Error(ErrorCode::io_write, page.parent_path().string(), "", "cannot create folder: " + error.message());
    }
    write_page(page, analysis_html(analysis), true, item_.input);
    page_ = {link, analysis.mean_curve};
    throw_if_stopped();
  }

  // Plans first when gates are set, so that a discarded result is never written at all.
  bool discarded_by_plan() {
    if (!options_.gates.active()) {
      return false;
    }
    const ResizeReport plan = plan_file(item_.input, resize_);
    const std::optional<std::string> reason = discard_reason(plan, options_.gates);
    if (!reason) {
      throw_if_stopped();
      return false;
    }
    fill_from_report(result_, plan);
    finish(Status::discarded, *reason);
    return true;
  }

  void run_to_output() {
    const fs::path& output = item_.output;
    // resize_file writes a PEFT adapter's rewritten config here, after the weights.
    const std::optional<fs::path> sidecar_output =
        sidecar_ ? std::optional(output.parent_path() / kPeftConfigName) : std::nullopt;
    std::error_code error;
    const bool weights_exist = fs::exists(fs::symlink_status(output, error));
    const bool sidecar_exists = sidecar_output && fs::exists(fs::symlink_status(*sidecar_output, error));
    if (weights_exist && !options_.force && is_complete_safetensors(output) && sidecar_exists == sidecar_.has_value()) {
      result_.output = output.string();
      result_.output_bytes = size_or_zero(output);
      return finish(Status::exists, "the output exists (--force redoes it)");
    }
    // Whatever is there without a complete result was left by a run that never finished.
    const bool overwrite = options_.force || weights_exist || sidecar_exists;
    fs::create_directories(output.parent_path(), error);
    if (error) {
      throw Error(ErrorCode::io_write, output.parent_path().string(), "", "cannot create folder: " + error.message());
    }
    resize_.force = overwrite;
    if (discarded_by_plan()) {
      if (options_.gates.on_discard == OnDiscard::copy) {
        copy_atomically(item_.input, output, overwrite);
        if (sidecar_) copy_atomically(*sidecar_, *sidecar_output, overwrite);
        result_.output = output.string();
        result_.message += "; original copied";
      }
      return;
    }
    const ResizeReport report = resize_file(item_.input, output, resize_);
    fill_from_report(result_, report);
    result_.output = output.string();
    finish(Status::ok, "");
  }

  void run_in_place() {
    if (sidecar_) {
      return finish(Status::failed, "a PEFT adapter: in place, its adapter_config.json would have to be replaced "
                                    "too, which lorakit does not do; resize it with -o OUTDIR");
    }
    const fs::path& input = item_.input;
    const fs::path backup = backup_path(input);
    std::error_code error;
    const bool backup_exists = fs::exists(fs::symlink_status(backup, error));
    // A backup that differs from the file means the file was already replaced by its resized form.
    if (options_.backup && backup_exists && !options_.force && !same_content(input, backup)) {
      result_.output = input.string();
      result_.output_bytes = result_.input_bytes;
      return finish(Status::exists, "already resized in place (" + backup.filename().string() + " exists)");
    }
    resize_.force = false;
    if (discarded_by_plan()) {
      result_.message += "; original kept";
      return;
    }
    const fs::path temp = random_temp_path(input);  // the pattern the next run removes if this one is killed
    RemoveOnExit remove_temp(temp);
    const ResizeReport report = resize_file(input, temp, resize_);
    check_fully_readable(temp);
    fs::permissions(temp, fs::status(input).permissions(), error);  // the replacement keeps the file's mode
    throw_if_stopped();
    if (options_.backup && !backup_exists) {
      make_backup(input, backup);
    }
    rename_or_throw(temp, input);
    remove_temp.release();
    fill_from_report(result_, report);
    result_.output = input.string();
    finish(Status::ok, "");
  }

  const Options& options_;
  const Item& item_;
  ResizeOptions resize_;
  std::optional<fs::path> sidecar_;  // the input's PEFT config (adapter_config.json beside it)
  FileResult result_;
  FilePage page_;
};

OverviewRow overview_row(const Item& item, const FileResult& result, FilePage page) {
  return {item.relative, std::string(status_name(result.status)), result.message, result.input_bytes,
          result.output_bytes, result.retention, std::move(page.link), std::move(page.curve)};
}

class Run {
 public:
  Run(const Options& options, Observer& observer) : options_(options), observer_(observer), budget_(options.max_memory) {}

  Summary execute() {
    const Clock::time_point start = Clock::now();
    items_ = scan_inputs(options_.scan);
    if (options_.shard) {
      items_ = select_shard(std::move(items_), *options_.shard);
    }
    if (!options_.report.empty()) {
      report_.emplace(options_.report);
    }
    remove_leftover_temp_files(items_);
    if (options_.nice) {
      lower_priority();
    }
    threads_ = threads_per_file(options_.resize.threads, options_.jobs, available_cores());
    overview_.resize(items_.size());
    estimate_memory();
    summary_.total = items_.size();
    observer_.begin(items_, total_bytes());
    run_workers();
    write_overview();
    summary_.seconds = seconds_since(start);
    summary_.signal = stop_signal();
    observer_.end(summary_);
    return summary_;
  }

 private:
  std::uint64_t total_bytes() const {
    std::uint64_t total = 0;
    for (const Item& item : items_) {
      total += item.is_safetensors ? size_or_zero(item.input) : 0;
    }
    return total;
  }

  void estimate_memory() {
    estimates_.assign(items_.size(), 0);
    if (!options_.max_memory) {
      return;
    }
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].is_safetensors && items_[i].problem.empty()) {
        estimates_[i] = estimate_peak_memory(items_[i].input, threads_);
      }
    }
  }

  void run_workers() {
    const unsigned workers = std::max(1U, options_.jobs);
    std::vector<std::thread> pool;
    pool.reserve(workers);
    for (unsigned i = 0; i < workers; ++i) {
      pool.emplace_back([this] { work(); });
    }
    for (std::thread& thread : pool) {
      thread.join();
    }
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      while (stop_signal() == 0 && next_ < items_.size() && !budget_.can_start(estimates_[next_])) {
        changed_.wait_for(lock, kStopPoll);
      }
      if (stop_signal() != 0 || next_ >= items_.size()) {
        return;
      }
      const std::size_t index = next_++;
      budget_.start(estimates_[index]);
      observer_.started(items_[index], index);
      lock.unlock();
      FileJob job(options_, items_[index], resize_options_for(index));
      FileResult result = job.run(index);
      lock.lock();
      budget_.finish(estimates_[index]);
      if (!options_.html.empty()) overview_[index] = overview_row(items_[index], result, job.page());
      record(result);
      changed_.notify_all();
    }
  }

  ResizeOptions resize_options_for(std::size_t index) {
    ResizeOptions resize = options_.resize;
    resize.threads = threads_;
    resize.progress = [this, index](std::uint64_t done, std::uint64_t total) {
      throw_if_stopped();
      const std::lock_guard lock(mutex_);
      observer_.progress(index, total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total));
    };
    return resize;
  }

  // The rows of the files that finished, in item order (an interrupted run lists what it did).
  void write_overview() {
    if (options_.html.empty()) return;
    std::vector<OverviewRow> rows;
    for (std::optional<OverviewRow>& row : overview_) {
      if (row) rows.push_back(std::move(*row));
    }
    try {
      write_page(options_.html, overview_html("lorakit batch", rows), true);
    } catch (const Error& error) {
      std::fprintf(stderr, "lorakit: warning: %s\n", error.what());
    }
  }

  void record(const FileResult& result) {
    ++summary_.counts[static_cast<std::size_t>(result.status)];
    if (result.status == Status::ok) {
      summary_.bytes_in += result.input_bytes;
      summary_.bytes_out += result.output_bytes.value_or(0);
    }
    if (report_) {
      try {
        report_->write(result);
      } catch (const Error& error) {
        std::fprintf(stderr, "lorakit: warning: %s\n", error.what());
      }
    }
    observer_.finished(result);
  }

  const Options& options_;
  Observer& observer_;
  std::vector<Item> items_;
  std::vector<std::uint64_t> estimates_;
  unsigned threads_ = 0;
  std::optional<ReportWriter> report_;
  std::vector<std::optional<OverviewRow>> overview_;  // per item, once finished (with Options::html)
  std::mutex mutex_;
  std::condition_variable changed_;
  MemoryBudget budget_;
  std::size_t next_ = 0;
  Summary summary_;
};

// Found before any file is resized: an overview that could not be written at the end.
void check_overview_path(const fs::path& overview) {
  std::error_code error;
  if (overview.extension() != ".html" && overview.extension() != ".htm") {
    throw Error(ErrorCode::invalid_argument, overview.string(), "", "--html needs a .html file name");
  }
  const fs::path folder = overview.parent_path().empty() ? fs::path(".") : overview.parent_path();
  if (!fs::is_directory(folder, error)) {
    throw Error(ErrorCode::io_write, overview.string(), "", "its folder does not exist");
  }
  if (fs::is_directory(overview, error)) {
    throw Error(ErrorCode::io_write, overview.string(), "", "is a folder");
  }
}

}  // namespace

Summary run_batch(const Options& options, Observer& observer) {
  if (options.jobs == 0) {
    throw Error(ErrorCode::invalid_argument, "--jobs must be at least 1");
  }
  if (!options.report.empty()) {
    check_report_path(options.report);
  }
  if (!options.html.empty()) check_overview_path(options.html);
  return Run(options, observer).execute();
}

}  // namespace lorakit::batch
