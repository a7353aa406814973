// Progress on stderr: one bar redrawn in place on a terminal, plain lines anywhere else.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>

#include <fmt/core.h>

#include "lorakit/batch.hpp"
#include "lorakit/report.hpp"
#include "lorakit/units.hpp"

namespace lorakit::batch {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr std::size_t kBarWidth = 24;
constexpr std::size_t kStatusWidth = 11;  // "interrupted"

// What a finished file says after its name.
std::string details(const FileResult& result) {
  if (result.status == Status::ok) {
    std::string text = fmt::format("{} → {}", format_bytes(result.input_bytes), format_bytes(result.output_bytes.value_or(0)));
    if (result.retention) {
      text += fmt::format("  retention {:.1f}%", *result.retention * 100.0);
    }
    return text;
  }
  return result.message;
}

class ProgressPrinter : public Observer {
 public:
  ProgressPrinter(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  void begin(const std::vector<Item>& items, std::uint64_t total_bytes) override {
    names_.clear();
    for (const Item& item : items) {
      names_.push_back(item.relative);
    }
    work_bytes_ = total_bytes;
    start_ = Clock::now();
    draw();
  }

  void started(const Item& item, std::size_t index) override {
    running_[index] = Running{item.is_safetensors ? file_size(item.input) : 0, 0.0};
    draw_soon();
  }

  void progress(std::size_t index, double fraction) override {
    // Never backwards, even when the engine learns its total work late (its planning pass ends at 1).
    running_[index].fraction = std::max(running_[index].fraction, std::clamp(fraction, 0.0, 1.0));
    draw_soon();
  }

  void finished(const FileResult& result) override {
    const Running running = running_[result.index];
    running_.erase(result.index);
    ++done_;
    // Files that needed no work do not count towards the rate the ETA is computed from.
    if (result.status == Status::ok || result.status == Status::discarded || result.status == Status::failed) {
      done_bytes_ += running.bytes;
    } else {
      work_bytes_ -= std::min(work_bytes_, running.bytes);
    }
    const std::string line = fmt::format("[{}/{}] {:<{}} {}  {}", done_, names_.size(), status_name(result.status),
                                         kStatusWidth, names_.at(result.index), details(result));
    if (terminal_) {
      if (result.status != Status::ok && result.status != Status::exists) {
        fmt::print(out_, "\r\033[K{}\n", line);  // keep what needs attention above the bar
      }
      draw();
    } else {
      fmt::print(out_, "{}\n", line);
    }
    std::fflush(out_);
  }

  void end(const Summary& summary) override {
    (void)summary;
    if (terminal_) {
      fmt::print(out_, "\r\033[K");
      std::fflush(out_);
    }
  }

 private:
  struct Running {
    std::uint64_t bytes = 0;
    double fraction = 0.0;
  };

  static std::uint64_t file_size(const std::filesystem::path& path) {
    std::error_code error;
    const std::uint64_t size = std::filesystem::file_size(path, error);
    return error ? 0 : size;
  }

  void draw_soon() {
    if (Clock::now() - last_draw_ >= kRedrawInterval) {
      draw();
    }
  }

  std::size_t terminal_width() const {
    winsize size{};
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
      return size.ws_col;
    }
    return 80;
  }

  void draw() {
    if (!terminal_) {
      return;
    }
    last_draw_ = Clock::now();
    double processed = static_cast<double>(done_bytes_);
    std::string current;
    for (const auto& [index, running] : running_) {
      processed += running.fraction * static_cast<double>(running.bytes);
      current += (current.empty() ? "" : ", ") + names_.at(index);
    }
    const double fraction = work_bytes_ == 0 ? 1.0 : std::min(1.0, processed / static_cast<double>(work_bytes_));
    const auto filled = static_cast<std::size_t>(std::lround(fraction * kBarWidth));
    const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
    const std::string eta = processed > 0.0 && elapsed > 1.0
                                ? format_duration(elapsed / processed * (static_cast<double>(work_bytes_) - processed))
                                : std::string("?");
    std::string line = fmt::format("[{}{}] {}/{} files  {}/{}  ETA {}  {}", std::string(filled, '#'),
                                   std::string(kBarWidth - filled, '-'), done_, names_.size(),
                                   format_bytes(static_cast<std::uint64_t>(processed)), format_bytes(work_bytes_), eta,
                                   current);
    // Never wrap: a wrapped line cannot be redrawn with '\r'. Cut on a UTF-8 character boundary.
    std::size_t cut = std::min(line.size(), terminal_width() - 1);
    while (cut < line.size() && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    line.resize(cut);
    fmt::print(out_, "\r\033[K{}", line);
    std::fflush(out_);
  }

  std::FILE* out_;
  bool terminal_;
  std::vector<std::string> names_;
  std::map<std::size_t, Running> running_;
  std::size_t done_ = 0;
  std::uint64_t done_bytes_ = 0;
  std::uint64_t work_bytes_ = 0;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
};

}  // namespace

std::unique_ptr<Observer> make_progress_printer(std::FILE* out, bool terminal) {
  return std::make_unique<ProgressPrinter>(out, terminal);
}

}  // namespace lorakit::batch
