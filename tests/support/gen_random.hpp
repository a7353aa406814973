#pragma once
// Portable deterministic random numbers for the generators: the same seed gives the same values with
// any standard library (std::mt19937_64 is fully specified; std distributions are not, so none is used).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>

namespace lorakit::testsupport {

// splitmix64 finaliser: decorrelates seeds derived from (seed, index).
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double log_uniform(double lo, double hi) { return std::exp(uniform(std::log(lo), std::log(hi))); }

  // Approximately standard normal: Irwin–Hall sum of four 16-bit uniforms from one 64-bit draw,
  // centred and scaled to unit variance (tails end at ±3.46). Cheap enough for gigabyte files.
  float normal() {
    const std::uint64_t x = engine_();
    const std::uint64_t sum = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48);
    constexpr double kMean = 4 * 65535.0 / 2;
    constexpr double kScale = 1.7320508075688772 / 65536.0;  // √3 / 2¹⁶: each uniform has variance 1/12
    return static_cast<float>((static_cast<double>(sum) - kMean) * kScale);
  }
  void fill_normal(float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = normal();
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace lorakit::testsupport
