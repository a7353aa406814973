// io_floor: the I/O a resize cannot avoid, timed with lorakit's own primitives — read the input once,
// sequentially with pread in large chunks (lorakit::Reader::read_at), and write an equal-size file
// through lorakit::AtomicFile (temp file in the target folder, fsync, rename, folder fsync).
// Prints the median of --repeats runs; the last line is machine-readable for bench/run.sh:
//   io_floor: bytes=B median_s=S read_s=R write_s=W
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "bench_util.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/safetensors.hpp"

namespace {

using lorakit::bench::median;
using lorakit::bench::Stopwatch;

struct Options {
  std::string input;
  std::string output;
  int repeats = 3;
  std::size_t chunk_mib = 8;
};

struct Sample {
  double read = 0;   // reading the whole input
  double write = 0;  // writing the same number of bytes, fsync and rename included
};

// Reads and writes chunk by chunk, as a streaming resize does; the data read is what is written, so
// nothing can be optimised away and the page cache sees the same traffic.
Sample copy_once(const lorakit::Reader& reader, const std::filesystem::path& output, std::size_t chunk) {
  std::vector<std::byte> buffer(chunk);
  Sample sample;
  lorakit::AtomicFile file(output, true);
  for (std::uint64_t offset = 0; offset < reader.file_size(); offset += chunk) {
    const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, reader.file_size() - offset));
    const std::span<std::byte> piece(buffer.data(), size);
    const Stopwatch read_watch;
    reader.read_at(offset, piece);
    sample.read += read_watch.seconds();
    const Stopwatch write_watch;
    file.write(piece);
    sample.write += write_watch.seconds();
  }
  const Stopwatch commit_watch;
  file.commit();
  sample.write += commit_watch.seconds();
  return sample;
}

int run(const Options& options) {
  const lorakit::Reader reader(options.input);
  std::vector<double> totals, reads, writes;
  for (int i = 0; i < options.repeats; ++i) {
    const Sample sample = copy_once(reader, options.output, options.chunk_mib << 20);
    totals.push_back(sample.read + sample.write);
    reads.push_back(sample.read);
    writes.push_back(sample.write);
    fmt::print("run {}: read {:.3f} s, write+fsync {:.3f} s\n", i + 1, sample.read, sample.write);
  }
  std::filesystem::remove(options.output);
  fmt::print("io_floor: bytes={} median_s={:.4f} read_s={:.4f} write_s={:.4f}\n", reader.file_size(),
             median(totals), median(reads), median(writes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"io_floor: read a file and write an equal-size file (temp, fsync, rename), timed"};
  Options options;
  app.add_option("input", options.input, "safetensors file to read")->required();
  app.add_option("-o,--output", options.output, "file to write (removed afterwards); use the resize's folder")
      ->required();
  app.add_option("--repeats", options.repeats, "runs (median reported)")->capture_default_str();
  app.add_option("--chunk-mib", options.chunk_mib, "read/write chunk size in MiB")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "io_floor: error: {}\n", e.what());
    return 1;
  }
}
