// budget_compare FILE: the byte-budget allocation against per-module sv_fro thresholds on one LoRA, from
// one measurement of its spectra (what `lorakit resize --dry-run` plans, exactly, without writing):
//   at the size sv_fro P writes: the budget's mean / energy retention (and the gain over sv_fro's)
//   at sv_fro's mean retention: the budget's size (and the bytes it saves)
//   the time of each allocation (choosing every rank for a target, exact size fitting included) next to
//   the time of measuring the spectra (pass 1 of a resize).
// The last line is machine-readable for bench/budget.sh:
//   budget_compare: measure_s=… sv_fro_bytes=… sv_fro_mean=… sv_fro_energy=… budget_mean=… budget_energy=…
//     energy_budget_energy=… bytes_at_mean=… allocate_size_s=… allocate_retention_s=…
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "bench_util.hpp"
#include "lorakit/error.hpp"
#include "lorakit/report.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "plan/measure.hpp"
#include "plan/output_plan.hpp"

namespace {

using lorakit::ResizeOptions;
namespace detail = lorakit::detail;

struct Planned {
  std::uint64_t bytes = 0;
  double mean = 0.0;
  double energy = 0.0;
  double seconds = 0.0;
};

struct File {
  const lorakit::Reader& reader;
  const lorakit::AdapterModel& model;
  std::vector<detail::ModulePlan> measured;

  Planned plan(const ResizeOptions& options) const {
    const lorakit::bench::Stopwatch watch;
    const std::vector<detail::ModulePlan> plans =
        detail::plans_for(reader.header(), model, measured, options, reader.file_size());
    Planned planned;
    planned.bytes = detail::plan_output(reader.header(), model, plans, options).layout.file_size();
    planned.seconds = watch.seconds();
    lorakit::ResizeReport report;
    for (const detail::ModulePlan& p : plans) report.modules.push_back(p.report);
    lorakit::summarize(report);
    planned.mean = report.average_fro;
    planned.energy = report.energy_weighted_fro;
    return planned;
  }
};

int run(const std::string& input, double param, unsigned threads) {
  const lorakit::Reader reader(input);
  const lorakit::AdapterModel model = detail::load_modules(reader);
  ResizeOptions base;
  base.threads = threads;
  const lorakit::bench::Stopwatch measuring;
  File file{reader, model, detail::measure_modules(reader, model, base, {})};
  const double measure_seconds = measuring.seconds();

  ResizeOptions fro = base;
  fro.method = lorakit::RankMethod::sv_fro;
  fro.param = param;
  const Planned per_module = file.plan(fro);

  ResizeOptions at_size = base;
  at_size.target_size = per_module.bytes;
  const Planned budget = file.plan(at_size);
  ResizeOptions at_size_energy = at_size;
  at_size_energy.objective = lorakit::Objective::energy;
  const Planned budget_energy = file.plan(at_size_energy);

  ResizeOptions at_mean = base;
  at_mean.target_retention = per_module.mean;
  const Planned smallest = file.plan(at_mean);

  fmt::print("{}: {} modules, {} bytes; spectra measured in {:.3f} s\n", input, model.modules.size(),
             reader.file_size(), measure_seconds);
  fmt::print("  sv_fro {:g}: {} bytes, mean {:.4f}, energy {:.4f}\n", param, per_module.bytes, per_module.mean,
             per_module.energy);
  fmt::print("  budget at that size: {} bytes, mean {:.4f} ({:+.4f}), energy objective: energy {:.4f} ({:+.4f}); "
             "allocation {:.4f} s\n",
             budget.bytes, budget.mean, budget.mean - per_module.mean, budget_energy.energy,
             budget_energy.energy - per_module.energy, budget.seconds);
  fmt::print("  budget at sv_fro's mean: {} bytes ({:.1f}% fewer); allocation {:.4f} s\n", smallest.bytes,
             100.0 * (1.0 - static_cast<double>(smallest.bytes) / static_cast<double>(per_module.bytes)),
             smallest.seconds);
  fmt::print(
      "budget_compare: measure_s={:.4f} sv_fro_bytes={} sv_fro_mean={:.6f} sv_fro_energy={:.6f} budget_mean={:.6f} "
      "budget_energy={:.6f} energy_budget_energy={:.6f} bytes_at_mean={} allocate_size_s={:.4f} "
      "allocate_retention_s={:.4f}\n",
      measure_seconds, per_module.bytes, per_module.mean, per_module.energy, budget.mean, budget.energy,
      budget_energy.energy, smallest.bytes, budget.seconds, smallest.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The budget allocation against sv_fro thresholds, from one measurement of a LoRA's spectra"};
  std::string input;
  double param = 0.95;
  unsigned threads = 0;
  app.add_option("input", input, "LoRA file")->required();
  app.add_option("--param", param, "sv_fro threshold to compare with")->capture_default_str();
  app.add_option("--threads", threads, "threads measuring the spectra (0: all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(input, param, threads);
  } catch (const std::exception& e) {
    fmt::print(stderr, "budget_compare: {}\n", e.what());
    return 1;
  }
}
