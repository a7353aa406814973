// dense_reference: the reference resizer's dense path against lorakit's factored path, module by module.
//
// Dense (what kohya's resize_lora.py does with torch.linalg.svd): form ΔW = up·down in float32 and run a
// full SVD (Eigen BDCSVD, float32, thin U and V — cheaper than torch's default full_matrices=True, so the
// comparison favours the dense path), then slice the rank-k factors.
// Factored (lorakit): factored_svd on the float64 factors, truncate to k, and apply the transforms
// (up' = up·T_up, down' = T_down·down) — the same product: new factors of the chosen rank.
// Decoding is excluded from both. k is chosen from the factored spectrum with sv_fro (default 0.95).
// The last line is machine-readable for bench/run.sh:
//   dense_reference: modules=N median_speedup=X total_speedup=Y dense_s=D factored_s=F
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/SVD>
#include <fmt/core.h>

#include "bench_util.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/spectrum.hpp"

namespace {

using lorakit::bench::median;
using lorakit::bench::median_seconds;
using lorakit::bench::Stopwatch;
using MatrixRMf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Options {
  std::string file;
  std::size_t modules = 8;
  int repeats = 5;
  double param = 0.95;
};

struct Result {
  std::string stem;
  Eigen::Index rows = 0, cols = 0, rank = 0, kept = 0;
  double dense = 0, factored = 0, apply = 0;
  double sigma_error = 0;  // max |σ_dense − σ_factored| / σ₁ over the factored spectrum
  lorakit::SvdRoute route = lorakit::SvdRoute::cholesky;
};

std::uint64_t flat_cols(const lorakit::TensorInfo& info) {
  std::uint64_t product = 1;
  for (std::size_t i = 1; i < info.shape.size(); ++i) product *= info.shape[i];
  return product;
}

// Modules of distinct (out, in·k) shapes: the largest shape first, then the shapes most modules have
// (the typical cost), larger first among equals; then a second module of each, and so on, until `count`.
std::vector<const lorakit::Module*> pick_modules(const lorakit::AdapterModel& model, std::size_t count) {
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<const lorakit::Module*>> by_shape;
  for (const lorakit::Module& module : model.modules) {
    if (module.kind != lorakit::ModuleKind::lora) continue;
    by_shape[{module.out_features(), module.in_flat()}].push_back(&module);
  }
  std::vector<std::vector<const lorakit::Module*>> groups;
  for (auto& [shape, modules] : by_shape) groups.push_back(modules);
  auto size = [](const auto& group) { return group.front()->out_features() * group.front()->in_flat(); };
  std::stable_sort(groups.begin(), groups.end(), [&](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() > b.size() : size(a) > size(b);
  });
  const auto largest = std::max_element(groups.begin(), groups.end(),
                                        [&](const auto& a, const auto& b) { return size(a) < size(b); });
  if (largest != groups.end()) std::rotate(groups.begin(), largest, largest + 1);
  std::vector<const lorakit::Module*> picked;
  for (std::size_t round = 0; picked.size() < count; ++round) {
    bool any = false;
    for (const auto& group : groups) {
      if (round < group.size() && picked.size() < count) {
        picked.push_back(group[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return picked;
}

template <typename Matrix, typename Value>
Matrix as_matrix(const std::vector<Value>& values, std::uint64_t rows, std::uint64_t cols) {
  return Eigen::Map<const Matrix>(values.data(), static_cast<Eigen::Index>(rows),
                                  static_cast<Eigen::Index>(cols));
}

std::size_t chosen_rank(const Eigen::VectorXd& sigma, Eigen::Index rows, Eigen::Index cols, Eigen::Index rank,
                        double param) {
  lorakit::RankRule rule;
  rule.method = lorakit::RankMethod::sv_fro;
  rule.param = param;
  return lorakit::choose_rank(std::span<const double>(sigma.data(), static_cast<std::size_t>(sigma.size())),
                              static_cast<std::size_t>(std::min(rows, cols)), static_cast<std::size_t>(rank),
                              rule);
}

Result measure(const lorakit::Reader& reader, const lorakit::Module& module, const Options& options) {
  const lorakit::TensorInfo& up_info = *module.tensor(lorakit::Role::up);
  const lorakit::TensorInfo& down_info = *module.tensor(lorakit::Role::down);
  const std::uint64_t rows = up_info.shape.at(0), rank = down_info.shape.at(0), cols = flat_cols(down_info);
  Result result;
  result.stem = module.stem;
  result.rows = static_cast<Eigen::Index>(rows);
  result.cols = static_cast<Eigen::Index>(cols);
  result.rank = static_cast<Eigen::Index>(rank);

  // Factored path first: its spectrum chooses k for both paths.
  const auto up = as_matrix<lorakit::MatrixRM>(reader.read_doubles(up_info), rows, rank);
  const auto down = as_matrix<lorakit::MatrixRM>(reader.read_doubles(down_info), rank, cols);
  lorakit::FactoredSvd svd;
  result.factored = median_seconds(options.repeats, [&] { svd = lorakit::factored_svd(up, down); });
  result.route = svd.route;
  const std::size_t k =
      std::min(chosen_rank(svd.sigma, result.rows, result.cols, result.rank, options.param), svd.rank());
  result.kept = static_cast<Eigen::Index>(k);
  svd.truncate(k);
  lorakit::MatrixRM new_up, new_down;
  result.apply = median_seconds(options.repeats, [&] {
    new_up.noalias() = up * svd.up_transform;
    new_down.noalias() = svd.down_transform * down;
  });

  // Dense path, once (it is the slow one).
  const auto up_f = as_matrix<MatrixRMf>(reader.read_floats(up_info), rows, rank);
  const auto down_f = as_matrix<MatrixRMf>(reader.read_floats(down_info), rank, cols);
  const Stopwatch watch;
  const Eigen::MatrixXf delta = up_f * down_f;
  Eigen::BDCSVD<Eigen::MatrixXf> dense(delta, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::Index kept = std::max<Eigen::Index>(result.kept, 1);
  const Eigen::MatrixXf dense_up =
      dense.matrixU().leftCols(kept) * dense.singularValues().head(kept).asDiagonal();
  const Eigen::MatrixXf dense_down = dense.matrixV().leftCols(kept).transpose();
  result.dense = watch.seconds();

  const double sigma1 = svd.sigma.size() > 0 ? svd.sigma(0) : 0.0;
  for (Eigen::Index i = 0; i < svd.sigma.size() && sigma1 > 0; ++i) {
    const double difference = std::abs(static_cast<double>(dense.singularValues()(i)) - svd.sigma(i));
    result.sigma_error = std::max(result.sigma_error, difference / sigma1);
  }
  if (dense_up.rows() != result.rows || dense_down.cols() != result.cols) {
    throw lorakit::Error(lorakit::ErrorCode::internal, "dense factors have the wrong shape");
  }
  return result;
}

int run(const Options& options) {
  const lorakit::Reader reader(options.file);
  const lorakit::AdapterModel model = lorakit::build_adapter_model(
      reader.header(), options.file,
      [&](const lorakit::TensorInfo& info) { return reader.read_doubles(info).at(0); });
  const std::vector<const lorakit::Module*> modules = pick_modules(model, options.modules);
  if (modules.empty()) {
    throw lorakit::Error(lorakit::ErrorCode::not_an_adapter, options.file, "",
                         "no plain LoRA module to compare");
  }
  fmt::print(
      "| module | ΔW shape | r | k | dense ms | factored svd ms | apply ms | speed-up | max σ error | route "
      "|\n");
  fmt::print("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
  std::vector<double> speedups;
  double dense_total = 0, factored_total = 0;
  for (const lorakit::Module* module : modules) {
    const Result r = measure(reader, *module, options);
    const double factored = r.factored + r.apply;
    speedups.push_back(r.dense / factored);
    dense_total += r.dense;
    factored_total += factored;
    fmt::print("| {} | {}×{} | {} | {} | {:.1f} | {:.3f} | {:.3f} | {:.0f}× | {:.1e} | {} |\n", r.stem,
               r.rows, r.cols, r.rank, r.kept, r.dense * 1e3, r.factored * 1e3, r.apply * 1e3,
               r.dense / factored, r.sigma_error, lorakit::svd_route_name(r.route));
    std::fflush(stdout);
  }
  fmt::print(
      "dense_reference: modules={} median_speedup={:.1f} total_speedup={:.1f} dense_s={:.3f} "
      "factored_s={:.4f}\n",
      modules.size(), median(speedups), dense_total / factored_total, dense_total, factored_total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dense_reference: dense float32 SVD of ΔW (the reference's path) vs lorakit's factored SVD"};
  Options options;
  app.add_option("file", options.file, "LoRA .safetensors file")->required();
  app.add_option("--modules", options.modules,
                 "modules to compare (largest shape, then the most common shapes)")
      ->capture_default_str();
  app.add_option("--repeats", options.repeats, "repeats of the factored path (median)")
      ->capture_default_str();
  app.add_option("--param", options.param, "sv_fro target that chooses k")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dense_reference: error: {}\n", e.what());
    return 1;
  }
}
