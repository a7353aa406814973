// resize_file / plan_file: the two-pass resize. Pass 1 reads every module's factors, computes the
// exact spectrum and keeps the small transforms of the chosen rank (and, up to a memory budget, the
// resized factors themselves); the header can then be laid out exactly. Pass 2 streams the output in
// order, re-reading the factors of modules whose resized factors were not kept.
#include <algorithm>
#include <chrono>
#include <functional>
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
#include "plan/measure.hpp"
#include "plan/module_filter.hpp"
#include "plan/module_factors.hpp"
#include "plan/module_plan.hpp"
#include "plan/ordered_writer.hpp"
#include "plan/output_plan.hpp"
#include "plan/output_sink.hpp"
#include "plan/parallel.hpp"
#include "plan/peft_sidecar.hpp"
#include "plan/target_plan.hpp"
#include "plan/tensor_source.hpp"

namespace lorakit {
namespace {

void validate_method(const ResizeOptions& options) {
  auto fail = [](const std::string& message) { throw Error(ErrorCode::invalid_argument, message); };
  switch (options.method) {
    case RankMethod::fixed:
      if (!options.rank) fail("fixed resizing needs --rank N (or choose a --method or a target)");
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
    case RankMethod::sv_knee:
      break;
  }
  if (options.minimal && !takes_param(options.method)) {
    fail("--minimal applies to sv_ratio, sv_fro and sv_cumulative only");
  }
  if (options.allow_drop) fail("--allow-drop applies to --target-size, --target-ratio and --target-retention");
}

void validate_target(const ResizeOptions& options) {
  auto fail = [](const std::string& message) { throw Error(ErrorCode::invalid_argument, message); };
  const int targets = (options.target_size ? 1 : 0) + (options.target_ratio ? 1 : 0) + (options.target_retention ? 1 : 0);
  if (targets > 1) fail("--target-size, --target-ratio and --target-retention exclude each other");
  if (options.method != RankMethod::fixed) {
    fail(fmt::format("a target chooses every rank itself: give it without --method {}", rank_method_name(options.method)));
  }
  if (options.minimal) fail("--minimal applies to sv_ratio, sv_fro and sv_cumulative only");
  if (options.target_size && *options.target_size == 0) fail("--target-size must be more than 0 bytes");
  auto fraction = [](const std::optional<double>& value) { return !value || (*value > 0.0 && *value <= 1.0); };
  if (!fraction(options.target_ratio)) fail("--target-ratio needs R with 0 < R <= 1");
  if (!fraction(options.target_retention)) fail("--target-retention needs T with 0 < T <= 1 (or 0% < T <= 100%)");
}

void validate(const ResizeOptions& options) {
  auto fail = [](const std::string& message) { throw Error(ErrorCode::invalid_argument, message); };
  auto positive = [&](const std::optional<std::size_t>& value, const char* flag) {
    if (value && *value == 0) fail(fmt::format("{} must be at least 1", flag));
  };
  positive(options.rank, "--rank");
  positive(options.conv_rank, "--conv-rank");
  positive(options.min_rank, "--min-rank");
  positive(options.max_rank, "--max-rank");
  if (options.min_rank) {
    for (const auto& [cap, flag] : {std::pair{options.max_rank, "--max-rank"}, std::pair{options.rank, "--rank"},
                                    std::pair{options.conv_rank, "--conv-rank"}}) {
      if (cap && *cap < *options.min_rank) fail(fmt::format("--min-rank {} is above {} {}", *options.min_rank, flag, *cap));
    }
  }
  if (has_target(options)) {
    validate_target(options);
  } else {
    validate_method(options);
  }
  if (options.dtype && !is_float(*options.dtype)) fail("--dtype must be a float type");
  [[maybe_unused]] const detail::ModuleFilter filter(options);  // a bad pattern fails before any file is read
  if (options.to_lora && options.keep_lycoris) fail("--to-lora and --keep-lycoris exclude each other");
}

void check_paths(const std::filesystem::path& input, const std::filesystem::path& output, bool force) {
  if (same_path(input, output)) {
    throw Error(ErrorCode::same_file, output.string(), "", "output would replace the input; choose another path");
  }
  refuse_existing_output(output, force);
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

// The input: the file named `path`, or, when given, a file image in memory that `path` names in messages.
using InputImage = std::optional<std::span<const std::byte>>;

Reader open_input(const std::filesystem::path& path, const InputImage& image) {
  if (image) return Reader(*image, path.string());
  return Reader(path);
}

struct Job {
  const std::filesystem::path& input;
  const ResizeOptions& options;
  Reader reader;
  AdapterModel model;
  std::vector<detail::ModulePlan> plans;
  std::optional<detail::EmittedCache> emitted;
  detail::OutputFile output;
  std::uint64_t progress_done = 0;
  std::uint64_t progress_total = 0;

  const PeftSidecar* sidecar;

  Job(const std::filesystem::path& path, const ResizeOptions& opts, const InputImage& image,
      const PeftSidecar* peft_sidecar)
      : input(path), options(opts), reader(open_input(path, image)), sidecar(peft_sidecar) {}

  void progress(std::uint64_t done) const {
    if (options.progress) options.progress(done, progress_total);
  }

  // writing: a file will be written, so modules get singular vectors and pass 1 may compute resized
  // factors early. Otherwise, and under a target (which needs every spectrum before it can choose any
  // rank), pass 1 only measures; a target's resized modules then get their singular vectors.
  void plan(bool writing) {
    model = detail::load_modules(reader, sidecar);
    plans.resize(model.modules.size());
    emitted.emplace(plans.size(), writing ? kResizeEarlyFactorBudget : 0);
    const bool target = has_target(options);
    // Progress counts modules planned (twice for a target's resized ones), then tensors written; the
    // input's counts stand in until the real ones are known.
    progress_total = plans.size() * (writing && target ? 2 : 1) + reader.header().tensors.size();
    if (writing && !target) {
      plan_by_rule();
    } else {
      plans = detail::measure_modules(reader, model, options, [&](std::size_t done) { progress(done); });
      progress_done = plans.size();
      plans = detail::plans_for(reader.header(), model, plans, options, reader.file_size());
      if (writing) add_singular_vectors();
    }
    output = detail::plan_output(reader.header(), model, plans, options);
    progress_total = progress_done + output.tensors.size();
  }

  // One pass: each module's spectrum, its rank by the options' rule, and the singular vectors it needs.
  void plan_by_rule() {
    const detail::ModuleFilter filter(options);
    std::vector<std::size_t> all(plans.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    plan_modules(all, [&](std::size_t i, detail::LoadedFactors* loaded) {
      const Module& module = model.modules[i];
      const detail::Selected selected = filter.select(module);
      if (selected.selection == detail::Selection::drop) return detail::dropped_by_filter(module);
      if (selected.selection == detail::Selection::exclude) {
        return detail::plan_module(reader, module, options,
                                   detail::always({ModuleOutcome::excluded, 0, std::string(selected.note)}));
      }
      return detail::plan_module(reader, module, options,
                                 [&](std::span<const double> sigma, std::uint64_t old_rank) {
                                   return detail::decide_by_rule(module, options, sigma, old_rank);
                                 },
                                 loaded);
    });
  }

  // The measured plans' resized modules, read again for the singular vectors of their rank.
  void add_singular_vectors() {
    std::vector<std::size_t> resized;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      if (plans[i].emit_lora) resized.push_back(i);
    }
    progress_total = progress_done + resized.size() + reader.header().tensors.size();
    plan_modules(resized, [&](std::size_t i, detail::LoadedFactors* loaded) {
      const detail::RankDecision decision{ModuleOutcome::resized, plans[i].rank, {}};
      return detail::plan_module(reader, model.modules[i], options, detail::always(decision), loaded);
    });
  }

  // Runs plan_one for `indices`, largest first, in parallel; offers each plan's resized factors to the
  // early-factor cache while the module's factors are loaded.
  void plan_modules(const std::vector<std::size_t>& indices,
                    const std::function<detail::ModulePlan(std::size_t, detail::LoadedFactors*)>& plan_one) {
    const std::vector<std::size_t> order = detail::largest_first(model.modules, indices);
    const std::uint64_t done_before = progress_done;
    detail::parallel_for(
        order.size(), detail::resolve_threads(options.threads),
        [&](std::size_t n) {
          const std::size_t i = order[n];
          detail::LoadedFactors loaded;
          plans[i] = plan_one(i, &loaded);
          emitted->offer(i, reader, plans[i], loaded, options);
        },
        [&](std::size_t done) { progress(done_before + done); });
    progress_done = done_before + order.size();
  }

  ResizeReport report(double seconds) const {
    ResizeReport r;
    r.input = input.string();
    r.input_bytes = reader.file_size();
    r.output_bytes = output.layout.file_size();
    if (options.target_size || options.target_ratio) r.target_bytes = detail::target_bytes(options, r.input_bytes);
    for (const detail::ModulePlan& plan : plans) r.modules.push_back(plan.report);
    for (const TensorInfo* info : model.passthrough) r.passthrough.push_back(info->name);
    if (std::any_of(plans.begin(), plans.end(), [](const auto& p) { return p.module->is_dora(); })) {
      r.notes.push_back("DoRA modules are resized with their magnitude kept: the result is approximate");
    }
    r.seconds = seconds;
    summarize(r);
    return r;
  }

  void write(detail::OutputSink& file, std::string_view target_name) {
    std::map<std::string_view, std::size_t> by_name;
    for (std::size_t i = 0; i < output.tensors.size(); ++i) by_name[output.tensors[i].spec.name] = i;
    std::vector<std::size_t> order;  // layout (file) order -> outputs index
    for (const TensorInfo& info : output.layout.tensors) order.push_back(by_name.at(info.name));

    file.reserve(output.layout.file_size());
    file.write(output.layout.prefix);
    std::optional<SshsHasher> hasher;
    if (output.metadata.kohya_style) hasher.emplace(plan_layout(output.specs, ss_only(output.metadata.metadata), true));

    std::size_t written = 0;
    detail::DataStream data(file, hasher ? &*hasher : nullptr);
    detail::OrderedWriteJob job;
    job.count = order.size();
    job.threads = detail::resolve_threads(options.threads);
    job.memory_budget = kResizeWriteBudget - detail::kDataChunk;  // the stream's chunk is part of the budget
    job.size_of = [&](std::size_t i) { return output.layout.tensors[i].nbytes(); };
    job.produce = [&](std::size_t i, std::vector<std::byte>& out) {
      out = detail::produce_tensor(reader, plans, *emitted, output.tensors[order[i]]);
    };
    job.sink = [&](std::span<const std::byte> bytes) {
      data.append(bytes);
      progress(progress_done + ++written);
    };
    detail::write_ordered(job);
    data.finish();

    if (hasher) {
      const SshsHashes hashes = hasher->finish();
      output.metadata.metadata["sshs_model_hash"] = hashes.model_hash;
      output.metadata.metadata["sshs_legacy_hash"] = hashes.legacy_hash;
      const Layout final_layout = plan_layout(output.specs, output.metadata.metadata, true);
      if (final_layout.prefix.size() != output.layout.prefix.size()) {
        throw Error(ErrorCode::internal, target_name, "", "header size changed when hashes were filled in");
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

// Where a run writes: nowhere (plan only), an atomic file, or memory.
struct Destination {
  const std::filesystem::path* file = nullptr;
  detail::MemorySink* memory = nullptr;
  bool writes() const { return file != nullptr || memory != nullptr; }
};

ResizeReport run(const std::filesystem::path& input_arg, const InputImage& image, const Destination& to,
                 const ResizeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  const detail::ResizePaths paths = detail::resolve_resize_paths(input_arg, to.file, options);
  const std::filesystem::path& input = paths.input;
  const std::filesystem::path* output = paths.output ? &*paths.output : nullptr;
  if (output != nullptr) {
    check_paths(input, *output, options.force);
    detail::check_sidecar_output(paths, options.force);
  }
  std::vector<std::string> cleanup_notes;
  for (const std::filesystem::path* written : {output, paths.sidecar_output ? &*paths.sidecar_output : nullptr}) {
    if (written == nullptr) continue;
    const std::vector<std::string> notes = remove_stale_temp_files_of(*written);
    cleanup_notes.insert(cleanup_notes.end(), notes.begin(), notes.end());
  }
  Job job(input, options, image, paths.sidecar ? &*paths.sidecar : nullptr);
  naming_file(input, [&] { job.plan(to.writes()); });
  if (output != nullptr) {
    detail::prepare_output_folder(paths);
    naming_file(input, [&] {
      detail::FileSink file(*output, options.force);
      job.write(file, output->string());
    });
  }
  if (to.memory != nullptr) naming_file(input, [&] { job.write(*to.memory, input.string()); });
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  ResizeReport report = job.report(elapsed.count());
  if (output != nullptr) report.output = output->string();
  if (to.memory != nullptr) report.output = "(in memory)";
  report.notes.insert(report.notes.end(), cleanup_notes.begin(), cleanup_notes.end());
  if (paths.sidecar_output) {
    detail::write_peft_sidecar(*job.model.peft_sidecar, report, *paths.sidecar_output, options.force);
  }
  detail::add_peft_notes(report, job.model, paths);
  return report;
}

}  // namespace

RankRule rank_rule_for(const ResizeOptions& options, bool has_kernel) {
  RankRule rule;
  rule.method = options.method;
  rule.param = options.param;
  rule.cap = has_kernel && options.conv_rank ? options.conv_rank : options.rank;
  if (options.max_rank) rule.cap = std::min(rule.cap.value_or(*options.max_rank), *options.max_rank);
  rule.floor = options.min_rank.value_or(1);
  rule.minimal = options.minimal;
  return rule;
}

bool has_target(const ResizeOptions& options) {
  return options.target_size || options.target_ratio || options.target_retention;
}

ResizeReport resize_file(const std::filesystem::path& input, const std::filesystem::path& output,
                         const ResizeOptions& options) {
  return run(input, std::nullopt, {.file = &output}, options);
}

ResizeReport plan_file(const std::filesystem::path& input, const ResizeOptions& options) {
  return run(input, std::nullopt, {}, options);
}

ResizedBytes resize_bytes(std::span<const std::byte> input, const ResizeOptions& options, std::string_view name) {
  detail::MemorySink memory;
  ResizedBytes result;
  result.report = run(std::filesystem::path(name), input, {.memory = &memory}, options);
  result.bytes = memory.take();
  return result;
}

ResizeReport plan_bytes(std::span<const std::byte> input, const ResizeOptions& options, std::string_view name) {
  return run(std::filesystem::path(name), input, {}, options);
}

}  // namespace lorakit
