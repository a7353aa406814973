#pragma once
// Small helpers shared by the benchmark programs: a stopwatch and the median of repeated timings.
#include <algorithm>
#include <chrono>
#include <vector>

namespace lorakit::bench {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Median of the samples (mean of the middle two for an even count); 0 for none. The machine is shared
// and noisy: the median of a few runs is the least disturbed summary.
inline double median(std::vector<double> samples) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : 0.5 * (samples[mid - 1] + samples[mid]);
}

// Runs `body` `repeats` times and returns the median wall time in seconds.
template <typename F>
double median_seconds(int repeats, F&& body) {
  std::vector<double> samples;
  for (int i = 0; i < repeats; ++i) {
    const Stopwatch watch;
    body();
    samples.push_back(watch.seconds());
  }
  return median(samples);
}

}  // namespace lorakit::bench
