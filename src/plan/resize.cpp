// resize_file / plan_file: the two-pass resize. Pass 1 reads every module's factors, computes the
// exact spectrum and keeps the small transforms of the chosen rank (and, up to a memory budget, the
// resized factors themselves); the header can then be laid out exactly. Pass 2 streams the output in
// order, re-reading the factors of modules whose resized factors were not kept.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lorakit/adapter.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"
#include "lorakit/report.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "plan/data_stream.hpp"
#include "plan/emitted_cache.hpp"
#include "plan/module_factors.hpp"
#include "plan/module_plan.hpp"
#include "plan/ordered_writer.hpp"
#include "plan/output_plan.hpp"
#include "plan/parallel.hpp"
#include "plan/tensor_source.hpp"

namespace lorakit {
namespace {

void validate(const ResizeOptions& options) {
  auto fail = [](const std::string& message) { throw Error(ErrorCode::invalid_argument, message); };
  if (options.rank && *options.rank == 0) fail("--rank must be at least 1");
  if (options.conv_rank && *options.conv_rank == 0) fail("--conv-rank must be at least 1");
  switch (options.method) {
    case RankMethod::fixed:
      if (!options.rank) fail("fixed resizing needs --rank N (or choose a --method)");
      if (options.minimal) fail("--minimal applies to the dynamic methods only");
      break;
    case RankMethod::sv_ratio:
      if (!(options.param >= 1.0) || !std::isfinite(options.param)) fail("sv_ratio needs --param P >= 1");
      break;
    case RankMethod::sv_fro:
    case RankMethod::sv_cumulative:
      if (!(options.param > 0.0 && options.param <= 1.0)) {
        fail(fmt::format("{} needs --param P with 0 < P <= 1", rank_method_name(options.method)));
      }
      break;
  }
  if (options.dtype && !is_float(*options.dtype)) fail("--dtype must be a float type");
  if (options.to_lora && options.keep_lycoris) fail("--to-lora and --keep-lycoris exclude each other");
}

void check_paths(const std::filesystem::path& input, const std::filesystem::path& output, bool force) {
  std::error_code ignored;
  const bool same = same_file(input, output) ||
                    std::filesystem::weakly_canonical(input, ignored) ==
                        std::filesystem::weakly_canonical(output, ignored);
  if (same) {
    throw Error(ErrorCode::same_file, output.string(), "", "output would replace the input; choose another path");
  }
  if (!force && std::filesystem::exists(std::filesystem::symlink_status(output))) {
    throw Error(ErrorCode::output_exists, output.string(), "", "output exists (use --force to replace it)");
  }
}

// Errors raised inside module code name the tensor only; add the file.
template <typename F>
auto naming_file(const std::filesystem::path& file, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    const std::string prefix = file.string() + ": ";
    if (std::string_view(e.what()).starts_with(prefix)) throw;
    throw Error(e.code(), prefix + e.what());
  }
}

// Module indices by decreasing spectrum cost ((m + n)·R², MATH.md §1), so that no large module is left
// to run alone at the end of pass 1.
std::vector<std::size_t> largest_first(const std::vector<Module>& modules) {
  std::vector<double> cost(modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const auto inner = static_cast<double>(detail::rank_bound(modules[i]));
    cost[i] = static_cast<double>(modules[i].out_features() + modules[i].in_flat()) * inner * inner;
  }
  std::vector<std::size_t> order(modules.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
  return order;
}

struct Job {
  const std::filesystem::path& input;
  const ResizeOptions& options;
  Reader reader;
  AdapterModel model;
  std::vector<detail::ModulePlan> plans;
  std::optional<detail::EmittedCache> emitted;
  std::vector<detail::OutputTensor> outputs;
  detail::OutputMetadata metadata;
  std::vector<TensorSpec> specs;
  Layout layout;
  std::uint64_t progress_total = 0;

  Job(const std::filesystem::path& path, const ResizeOptions& opts) : input(path), options(opts), reader(path) {}

  void progress(std::uint64_t done) const {
    if (options.progress) options.progress(done, progress_total);
  }

  // cache_emitted: a file will be written, so pass 1 may compute resized factors early.
  void plan(bool cache_emitted) {
    const std::string file = input.string();
    model = build_adapter_model(reader.header(), file, [this](const TensorInfo& info) {
      const std::vector<double> values = reader.read_doubles(info);
      if (values.size() != 1) {
        throw Error(ErrorCode::adapter_invalid_alpha, "", info.name, "a scalar must hold one value");
      }
      return values[0];
    });
    if (model.modules.empty()) {
      throw Error(ErrorCode::not_an_adapter, file, "",
                  fmt::format("no LoRA/LyCORIS module among its {} tensors", reader.header().tensors.size()));
    }
    plans.resize(model.modules.size());
    emitted.emplace(plans.size(), cache_emitted ? kResizeEarlyFactorBudget : 0);
    // Pass 1 counts modules, pass 2 tensors; the input's tensor count stands in until the output's is known.
    progress_total = plans.size() + reader.header().tensors.size();
    const std::vector<std::size_t> order = largest_first(model.modules);
    detail::parallel_for(
        plans.size(), detail::resolve_threads(options.threads),
        [&](std::size_t n) {
          const std::size_t i = order[n];
          detail::LoadedFactors loaded;
          plans[i] = detail::plan_module(reader, model.modules[i], options, &loaded);
          emitted->offer(i, reader, plans[i], loaded, options);
        },
        [&](std::size_t done) { progress(done); });
    outputs = detail::output_tensors(model, plans, options);
    metadata = detail::output_metadata(reader.header(), model, plans, options);
    if (metadata.kohya_style) {
      // Fixed-length placeholders: the real hashes are known only after the data is written.
      metadata.metadata["sshs_model_hash"] = std::string(64, '0');
      metadata.metadata["sshs_legacy_hash"] = std::string(8, '0');
    }
    for (const detail::OutputTensor& tensor : outputs) specs.push_back(tensor.spec);
    layout = plan_layout(specs, metadata.metadata, metadata.has_metadata);
    progress_total = plans.size() + outputs.size();
  }

  ResizeReport report(double seconds) const {
    ResizeReport r;
    r.input = input.string();
    r.input_bytes = reader.file_size();
    r.output_bytes = layout.file_size();
    for (const detail::ModulePlan& plan : plans) r.modules.push_back(plan.report);
    for (const TensorInfo* info : model.passthrough) r.passthrough.push_back(info->name);
    if (std::any_of(plans.begin(), plans.end(), [](const auto& p) { return p.module->is_dora(); })) {
      r.notes.push_back("DoRA modules are resized with their magnitude kept: the result is approximate");
    }
    r.seconds = seconds;
    summarize(r);
    return r;
  }

  void write(const std::filesystem::path& output) {
    std::map<std::string_view, std::size_t> by_name;
    for (std::size_t i = 0; i < outputs.size(); ++i) by_name[outputs[i].spec.name] = i;
    std::vector<std::size_t> order;  // layout (file) order -> outputs index
    for (const TensorInfo& info : layout.tensors) order.push_back(by_name.at(info.name));

    AtomicFile file(output, options.force);
    file.write(layout.prefix);
    std::optional<SshsHasher> hasher;
    if (metadata.kohya_style) hasher.emplace(plan_layout(specs, ss_only(metadata.metadata), true));

    std::size_t written = 0;
    detail::DataStream data(file, hasher ? &*hasher : nullptr);
    detail::OrderedWriteJob job;
    job.count = order.size();
    job.threads = detail::resolve_threads(options.threads);
    job.memory_budget = kResizeWriteBudget - detail::kDataChunk;  // the stream's chunk is part of the budget
    job.size_of = [&](std::size_t i) { return layout.tensors[i].nbytes(); };
    job.produce = [&](std::size_t i, std::vector<std::byte>& out) {
      out = detail::produce_tensor(reader, plans, *emitted, outputs[order[i]]);
    };
    job.sink = [&](std::span<const std::byte> bytes) {
      data.append(bytes);
      progress(plans.size() + ++written);
    };
    detail::write_ordered(job);
    data.finish();

    if (hasher) {
      const SshsHashes hashes = hasher->finish();
      metadata.metadata["sshs_model_hash"] = hashes.model_hash;
      metadata.metadata["sshs_legacy_hash"] = hashes.legacy_hash;
      const Layout final_layout = plan_layout(specs, metadata.metadata, true);
      if (final_layout.prefix.size() != layout.prefix.size()) {
        throw Error(ErrorCode::internal, output.string(), "", "header size changed when hashes were filled in");
      }
      file.write_at(0, final_layout.prefix);
    }
    file.commit();
  }
};

// Temp files of `output` whose writer was killed (SIGKILL, power loss) are removed before a new one is
// written; live writers' are kept (lorakit/atomic_file.hpp). One report note per file removed.
std::vector<std::string> remove_stale_temp_files_of(const std::filesystem::path& output) {
  std::vector<std::string> notes;
  for (const std::filesystem::path& removed : remove_stale_temp_files(output)) {
    notes.push_back("removed " + removed.string() + ", a temporary file left by an interrupted run");
  }
  return notes;
}

ResizeReport run(const std::filesystem::path& input, const std::filesystem::path* output,
                 const ResizeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  if (output != nullptr) check_paths(input, *output, options.force);
  const std::vector<std::string> cleanup_notes = output != nullptr ? remove_stale_temp_files_of(*output)
                                                                    : std::vector<std::string>{};
  Job job(input, options);
  naming_file(input, [&] { job.plan(output != nullptr); });
  if (output != nullptr) naming_file(input, [&] { job.write(*output); });
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  ResizeReport report = job.report(elapsed.count());
  if (output != nullptr) report.output = output->string();
  report.notes.insert(report.notes.end(), cleanup_notes.begin(), cleanup_notes.end());
  return report;
}

}  // namespace

RankRule rank_rule_for(const ResizeOptions& options, bool has_kernel) {
  RankRule rule;
  rule.method = options.method;
  rule.param = options.param;
  rule.cap = has_kernel && options.conv_rank ? options.conv_rank : options.rank;
  rule.minimal = options.minimal;
  return rule;
}

ResizeReport resize_file(const std::filesystem::path& input, const std::filesystem::path& output,
                         const ResizeOptions& options) {
  return run(input, &output, options);
}

ResizeReport plan_file(const std::filesystem::path& input, const ResizeOptions& options) {
  return run(input, nullptr, options);
}

}  // namespace lorakit
