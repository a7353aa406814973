// Per-file report rows (.jsonl / .csv) and the final summary table.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstring>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "lorakit/batch.hpp"
#include "lorakit/report.hpp"
#include "lorakit/error.hpp"
#include "lorakit/units.hpp"
#include "lorakit/interrupt.hpp"

namespace lorakit::batch {
namespace {

constexpr std::array<std::string_view, 11> kColumns = {"input",    "output",   "status",      "input_bytes",
                                                       "output_bytes", "retention", "rank_min", "rank_median",
                                                       "rank_max", "seconds", "message"};

bool ends_with(const std::filesystem::path& path, std::string_view extension) {
  return path.extension().string() == extension;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string quoted = "\"";
  for (const char c : text) {
    quoted += c;
    if (c == '"') {
      quoted += '"';
    }
  }
  return quoted + '"';
}

template <typename T>
std::string optional_text(const std::optional<T>& value) {
  return value ? fmt::format("{}", *value) : std::string();
}

std::string seconds_text(double seconds) { return fmt::format("{:.3f}", seconds); }

}  // namespace

std::string_view status_name(Status status) {
  switch (status) {
    case Status::ok:
      return "ok";
    case Status::exists:
      return "exists";
    case Status::skipped:
      return "skipped";
    case Status::discarded:
      return "discarded";
    case Status::failed:
      return "failed";
    case Status::interrupted:
      return "interrupted";
  }
  return "?";
}

std::optional<RankStats> rank_stats(const ResizeReport& report) {
  if (report.modules.empty()) {
    return std::nullopt;
  }
  std::vector<std::uint64_t> ranks;
  ranks.reserve(report.modules.size());
  for (const ModuleReport& module : report.modules) {
    ranks.push_back(module.new_rank);
  }
  std::sort(ranks.begin(), ranks.end());
  const std::size_t middle = ranks.size() / 2;
  const double median = ranks.size() % 2 == 1
                            ? static_cast<double>(ranks[middle])
                            : (static_cast<double>(ranks[middle - 1]) + static_cast<double>(ranks[middle])) / 2.0;
  return RankStats{ranks.front(), median, ranks.back()};
}

std::string csv_header() {
  std::string header(kColumns[0]);
  for (std::size_t i = 1; i < kColumns.size(); ++i) {
    header += ',' + std::string(kColumns[i]);
  }
  return header;
}

std::string csv_row(const FileResult& result) {
  const std::string fields[] = {
      csv_field(result.input),
      csv_field(result.output),
      std::string(status_name(result.status)),
      std::to_string(result.input_bytes),
      optional_text(result.output_bytes),
      result.retention ? fmt::format("{:.6f}", *result.retention) : std::string(),
      result.ranks ? std::to_string(result.ranks->min) : std::string(),
      result.ranks ? fmt::format("{}", result.ranks->median) : std::string(),
      result.ranks ? std::to_string(result.ranks->max) : std::string(),
      seconds_text(result.seconds),
      csv_field(result.message),
  };
  std::string row = fields[0];
  for (std::size_t i = 1; i < std::size(fields); ++i) {
    row += ',' + fields[i];
  }
  return row;
}

std::string jsonl_row(const FileResult& result) {
  using json = nlohmann::ordered_json;
  const auto optional_json = [](const auto& value) { return value ? json(*value) : json(nullptr); };
  json row = json::object();
  row["input"] = result.input;
  row["output"] = result.output.empty() ? json(nullptr) : json(result.output);
  row["status"] = status_name(result.status);
  row["input_bytes"] = result.input_bytes;
  row["output_bytes"] = optional_json(result.output_bytes);
  row["retention"] = optional_json(result.retention);
  row["rank_min"] = result.ranks ? json(result.ranks->min) : json(nullptr);
  row["rank_median"] = result.ranks ? json(result.ranks->median) : json(nullptr);
  row["rank_max"] = result.ranks ? json(result.ranks->max) : json(nullptr);
  row["seconds"] = std::round(result.seconds * 1000.0) / 1000.0;
  row["message"] = result.message;
  // File names need not be UTF-8: replace invalid bytes rather than fail the whole report.
  return row.dump(-1, ' ', false, json::error_handler_t::replace);
}

void check_report_path(const std::filesystem::path& path) {
  if (!ends_with(path, ".jsonl") && !ends_with(path, ".csv")) {
    throw Error(ErrorCode::invalid_argument,
                "--report " + path.string() + ": the file name must end in .jsonl or .csv");
  }
}

ReportWriter::ReportWriter(const std::filesystem::path& path) : path_(path), csv_(ends_with(path, ".csv")) {
  check_report_path(path);
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) {
    throw Error(ErrorCode::io_open, path.string(), "", std::string("cannot create report: ") + std::strerror(errno));
  }
  if (csv_) {
    std::fputs((csv_header() + "\n").c_str(), file_);
    std::fflush(file_);
  }
}

ReportWriter::~ReportWriter() { std::fclose(file_); }

void ReportWriter::write(const FileResult& result) {
  const std::string line = (csv_ ? csv_row(result) : jsonl_row(result)) + "\n";
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    throw Error(ErrorCode::io_write, path_.string(), "", std::string("cannot write report: ") + std::strerror(errno));
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) {
    return "?";
  }
  if (seconds < 60.0) {
    return fmt::format("{:.1f} s", seconds);
  }
  const auto whole = static_cast<std::uint64_t>(seconds);
  if (whole < 3600) {
    return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  }
  return fmt::format("{} h {:02} min", whole / 3600, whole / 60 % 60);
}

void print_summary(std::FILE* out, const Summary& summary) {
  fmt::print(out, "\n{:<12}{:>8}\n", "status", "files");
  for (std::size_t i = 0; i < kStatusCount; ++i) {
    const auto status = static_cast<Status>(i);
    if (status != Status::interrupted || summary.count(status) > 0) {
      fmt::print(out, "{:<12}{:>8}\n", status_name(status), summary.count(status));
    }
  }
  fmt::print(out, "{:<12}{:>8}\n", "total", summary.total);
  const std::uint64_t saved = summary.bytes_in - std::min(summary.bytes_in, summary.bytes_out);
  const double saved_percent =
      summary.bytes_in == 0 ? 0.0 : 100.0 * static_cast<double>(saved) / static_cast<double>(summary.bytes_in);
  fmt::print(out, "resized     {} → {}, saved {} ({:.1f}%)\n", format_bytes(summary.bytes_in),
             format_bytes(summary.bytes_out), format_bytes(saved), saved_percent);
  fmt::print(out, "time        {}\n", format_duration(summary.seconds));
  if (summary.signal != 0) {
    fmt::print(out, "interrupted by {}: run the same command again to finish the rest\n",
               summary.signal == SIGINT ? "SIGINT" : summary.signal == SIGTERM ? "SIGTERM" : "a signal");
  }
}

int exit_code(const Summary& summary) {
  if (summary.signal != 0) {
    return interrupted_exit_code(summary.signal);
  }
  return summary.count(Status::failed) > 0 ? 1 : 0;
}

}  // namespace lorakit::batch
