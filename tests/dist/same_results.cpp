// lorakit-same-results A B FILE... — do FILE in folder A and FILE in folder B hold the same results?
//
// tests/dist compares the release binary (x86-64-v3: AVX2) with the native build (-march=native, which
// may use AVX-512). Their float64 sums run in different orders, so the last bits differ, a singular
// vector may come out with the opposite sign (up and down both flipped, the same ΔW), and a rounded
// factor element may change. "The same results" is therefore:
//   .safetensors  the same metadata apart from the two hashes of the data, the same tensor names, dtypes,
//                 shapes and offsets; every tensor byte-identical, except the factors of modules whose
//                 ΔW as a loader computes it (tests/support/loader_eval) differs by at most the factors'
//                 dtype epsilon, ‖ΔW_A − ΔW_B‖_F ≤ ε·‖ΔW_A‖_F;
//   .json         reports: the same structure, equal strings, integers and booleans (ranks, counts),
//                 floating-point numbers within 1e-9 relative; the wall time ("seconds") is ignored;
//   anything else byte-identical.
// Prints one line per file saying how close the two are; exits 1 at the first difference beyond that.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "loader_eval.hpp"
#include "lorakit/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using lorakit::DType;
using lorakit::Reader;
using lorakit::TensorInfo;

// Report numbers such as max_ratio = σ₁/σ_k amplify last-bit differences of a small σ_k (1e-12 relative
// measured on the demo's max_ratio ≈ 3300); ranks and counts are integers and compared exactly.
constexpr double kReportTolerance = 1e-9;
const char* const kDataHashes[] = {"sshs_model_hash", "sshs_legacy_hash"};

struct Mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double epsilon(DType dtype) {
  switch (dtype) {
    case DType::F16: return std::ldexp(1.0, -10);
    case DType::BF16: return std::ldexp(1.0, -7);
    case DType::F32: return std::ldexp(1.0, -23);
    case DType::F64: return std::ldexp(1.0, -52);
    default: return 0.0;  // integer and other tensors must be byte-identical
  }
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Mismatch(fmt::format("{}: cannot be read", path.string()));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool same_layout(const TensorInfo& a, const TensorInfo& b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin && a.end == b.end;
}

// The module a factor tensor belongs to: the longest stem that prefixes "NAME.".
const std::string* module_of(const std::string& tensor, const std::set<std::string>& stems) {
  const std::string* best = nullptr;
  for (const std::string& stem : stems) {
    if (tensor.size() > stem.size() && tensor.compare(0, stem.size(), stem) == 0 && tensor[stem.size()] == '.' &&
        (best == nullptr || stem.size() > best->size())) {
      best = &stem;
    }
  }
  return best;
}

const lorakit::testsupport::LoaderModule& only_module(const std::vector<lorakit::testsupport::LoaderModule>& modules,
                                                      const std::string& stem) {
  const auto it = std::find_if(modules.begin(), modules.end(), [&](const auto& m) { return m.stem == stem; });
  if (it == modules.end() || it->delta.size() == 0) throw Mismatch(fmt::format("module {} has no ΔW", stem));
  return *it;
}

// Compares one module's loader ΔW in the two files; returns ‖ΔW_A − ΔW_B‖ / ‖ΔW_A‖.
double compare_module(const fs::path& a, const fs::path& b, const std::string& stem, double tolerance) {
  const auto select = [&](const std::string& s) { return s == stem; };
  const auto modules_a = lorakit::testsupport::loader_modules(a, {}, select);
  const auto modules_b = lorakit::testsupport::loader_modules(b, {}, select);
  const auto& ma = only_module(modules_a, stem);
  const auto& mb = only_module(modules_b, stem);
  if (ma.kind != mb.kind || ma.weight_shape != mb.weight_shape || ma.rank != mb.rank || ma.scale != mb.scale) {
    throw Mismatch(fmt::format("{}: module {} differs in kind, shape, rank or scale", b.string(), stem));
  }
  const double error = lorakit::testsupport::relative_error(ma.delta, mb.delta);
  if (!(error <= tolerance)) {
    throw Mismatch(fmt::format("{}: module {}: ΔW differs by {:.3g} relative (tolerance {:.3g})", b.string(), stem,
                               error, tolerance));
  }
  return error;
}

std::string compare_safetensors(const fs::path& a, const fs::path& b) {
  const Reader ra(a), rb(b);
  lorakit::Metadata meta_a = ra.header().metadata, meta_b = rb.header().metadata;
  for (const char* key : kDataHashes) meta_a.erase(key), meta_b.erase(key);
  if (meta_a != meta_b) throw Mismatch(fmt::format("{}: metadata differs", b.string()));
  const auto& ta = ra.header().tensors;
  const auto& tb = rb.header().tensors;
  if (!std::equal(ta.begin(), ta.end(), tb.begin(), tb.end(), same_layout)) {
    throw Mismatch(fmt::format("{}: tensor names, dtypes, shapes or offsets differ", b.string()));
  }
  std::set<std::string> stems;  // every module's stem, collected without computing any ΔW
  lorakit::testsupport::loader_modules(a, {}, [&](const std::string& stem) {
    stems.insert(stem);
    return false;
  });
  std::map<std::string, double> tolerance;  // per differing module: the largest epsilon of its tensors
  for (std::size_t i = 0; i < ta.size(); ++i) {
    if (ra.read(ta[i]) == rb.read(tb[i])) continue;
    const std::string* stem = module_of(ta[i].name, stems);
    if (stem == nullptr || epsilon(ta[i].dtype) == 0.0) {
      throw Mismatch(fmt::format("{}: tensor {} differs and is not a floating-point factor", b.string(), ta[i].name));
    }
    tolerance[*stem] = std::max(tolerance[*stem], epsilon(ta[i].dtype));
  }
  double largest = 0.0;
  for (const auto& [stem, eps] : tolerance) largest = std::max(largest, compare_module(a, b, stem, eps));
  return fmt::format("{} tensors; {} of {} modules with factors not byte-identical, their ΔW within {:.2g} relative",
                     ta.size(), tolerance.size(), stems.size(), largest);
}

struct JsonStats {
  int numbers = 0;
  int different = 0;
  double largest = 0.0;  // relative difference
};

void compare_json(const nlohmann::json& a, const nlohmann::json& b, const std::string& where, JsonStats& stats) {
  if (a.is_number_float() && b.is_number_float()) {
    const double x = a.get<double>(), y = b.get<double>();
    const double relative = std::abs(x - y) / std::max({1.0, std::abs(x), std::abs(y)});
    if (!(relative <= kReportTolerance)) throw Mismatch(fmt::format("{}: {} vs {}", where, x, y));
    ++stats.numbers;
    stats.different += x != y;
    stats.largest = std::max(stats.largest, relative);
  } else if (a.type() != b.type() || a.size() != b.size()) {
    throw Mismatch(fmt::format("{}: {} vs {}", where, a.dump(), b.dump()));
  } else if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) throw Mismatch(fmt::format("{}: no key {}", where, it.key()));
      compare_json(it.value(), b.at(it.key()), where + "." + it.key(), stats);
    }
  } else if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) compare_json(a[i], b[i], fmt::format("{}[{}]", where, i), stats);
  } else if (a != b) {
    throw Mismatch(fmt::format("{}: {} vs {}", where, a.dump(), b.dump()));
  }
}

std::string compare_report(const fs::path& a, const fs::path& b) {
  nlohmann::json ja = nlohmann::json::parse(read_bytes(a)), jb = nlohmann::json::parse(read_bytes(b));
  ja.erase("seconds");
  jb.erase("seconds");
  JsonStats stats;
  compare_json(ja, jb, b.string(), stats);
  return fmt::format("{} of {} floating-point numbers not equal, within {:.2g} relative; all else equal",
                     stats.different, stats.numbers, stats.largest);
}

std::string compare_bytes(const fs::path& a, const fs::path& b) {
  if (read_bytes(a) != read_bytes(b)) throw Mismatch(fmt::format("{} differs", b.string()));
  return "byte-identical";
}

std::string compare(const fs::path& a, const fs::path& b) {
  if (a.extension() == ".safetensors") return compare_safetensors(a, b);
  if (a.extension() == ".json") return compare_report(a, b);
  return compare_bytes(a, b);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fmt::print(stderr, "usage: lorakit-same-results FOLDER_A FOLDER_B FILE...\n");
    return 2;
  }
  try {
    for (int i = 3; i < argc; ++i) {
      fmt::print("  {}: {}\n", argv[i], compare(fs::path(argv[1]) / argv[i], fs::path(argv[2]) / argv[i]));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "same results: FAIL: {}\n", e.what());
    return 1;
  }
  return 0;
}
