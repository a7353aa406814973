// lorakit._lorakit: the Python binding, a thin layer over the public headers. Every call runs with
// the GIL released (see attended.hpp); errors become lorakit.Error with .code and the CLI's message.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "attended.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"
#include "lorakit/analysis.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/report.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "options.hpp"

namespace lorakit::python {
namespace {

namespace fs = std::filesystem;

py::object json_loads(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

// Takes `progress` out of the keywords: it is a callback, not an option.
py::object take_progress(py::dict& keywords) {
  py::object progress = py::none();
  if (keywords.contains("progress")) {
    progress = keywords["progress"];
    PyDict_DelItemString(keywords.ptr(), "progress");
  }
  if (!progress.is_none() && !PyCallable_Check(progress.ptr())) {
    throw Error(ErrorCode::invalid_argument, "progress: expected a callable (done, total)");
  }
  return progress;
}

// Runs one resize-engine call attended; the engine's progress callback stops it once cancelled.
template <class Call>
auto attended_resize(py::kwargs keywords, Call&& call) {
  Attended attended(take_progress(keywords));
  ResizeOptions options = resize_options(keywords);
  options.progress = [&attended](std::uint64_t done, std::uint64_t total) {
    attended.report(done, total);
    if (attended.cancelled()) throw Error(ErrorCode::interrupted, "interrupted");
  };
  return attended.run([&] { return call(options); });
}

std::vector<std::string> error_code_names() {
  std::vector<std::string> names;
  for (int code = 0;; ++code) {
    const std::string_view name = error_code_name(static_cast<ErrorCode>(code));
    if (name == "unknown") return names;
    names.emplace_back(name);
  }
}

// Batch progress: files finished of the run's total.
class BatchProgress final : public batch::Observer {
 public:
  explicit BatchProgress(Attended& attended) : attended_(attended) {}
  void begin(const std::vector<batch::Item>& items, std::uint64_t) override {
    total_ = items.size();
    attended_.report(0, total_);
  }
  void finished(const batch::FileResult& result) override {
    rows_.push_back(batch::jsonl_row(result));
    attended_.report(rows_.size(), total_);
  }
  std::vector<std::string> take_rows() { return std::move(rows_); }

 private:
  Attended& attended_;
  std::uint64_t total_ = 0;
  std::vector<std::string> rows_;
};

// One path, or an iterable of paths (str or os.PathLike), as the CLI's INPUT... (files, folders, globs).
std::vector<std::string> input_list(const py::object& inputs) {
  const py::object fspath = py::module_::import("os").attr("fspath");
  if (py::isinstance<py::str>(inputs) || py::hasattr(inputs, "__fspath__")) return {fspath(inputs).cast<std::string>()};
  std::vector<std::string> list;
  for (const py::handle input : inputs) list.push_back(fspath(input).cast<std::string>());
  return list;
}

py::list run_batch(const py::object& inputs, const fs::path& output_dir, py::kwargs keywords) {
  Attended attended(take_progress(keywords));
  batch::Options options = batch_options(keywords);
  options.scan.inputs = input_list(inputs);
  options.scan.output_dir = output_dir;
  BatchProgress observer(attended);
  batch::clear_stop();
  try {
    attended.run([&] { return batch::run_batch(options, observer); }, [] { batch::request_stop(SIGINT); });
  } catch (...) {
    batch::clear_stop();
    throw;
  }
  py::list rows;
  for (const std::string& row : observer.take_rows()) rows.append(json_loads(row));
  return rows;
}

// The presets as the resize keywords they stand for: {"high": {"method": "sv_fro", "param": 0.95}, ...}.
py::dict batch_presets() {
  py::dict presets;
  for (const char* name : {"high", "med", "low"}) {
    std::string method;
    std::optional<double> param;
    apply_preset(*parse_preset(name), method, param);
    presets[name] = py::dict(py::arg("method") = method, py::arg("param") = *param);
  }
  return presets;
}

// As `lorakit inspect` reads its input: a PEFT folder's weights, scaled by the adapter_config.json beside them.
Analysis analysis_of(const AdapterInput& input, unsigned threads) {
  return analyze_file(input.weights, threads, input.config());
}

Inspection inspection_of(const AdapterInput& input) { return inspect_file(Reader(input.weights), input.config()); }

std::string report_text(const ResizeReport& report, bool verbose) {
  std::ostringstream text;
  print_report(text, report, verbose);
  return text.str();
}

void bind_reports(py::module_& m) {
  py::class_<ModuleReport>(m, "ModuleReport", "One module of a resize report, as the CLI's --verbose line.")
      .def_readonly("name", &ModuleReport::stem)
      .def_readonly("kind", &ModuleReport::kind)
      .def_readonly("family", &ModuleReport::family)
      .def_readonly("shape", &ModuleReport::weight_shape)
      .def_readonly("old_rank", &ModuleReport::old_rank)
      .def_readonly("new_rank", &ModuleReport::new_rank)
      .def_property_readonly("outcome", [](const ModuleReport& r) { return std::string(module_outcome_name(r.outcome)); })
      .def_readonly("sum_retained", &ModuleReport::sum_retained)
      .def_readonly("fro_retained", &ModuleReport::fro_retained)
      .def_readonly("max_ratio", &ModuleReport::max_ratio)
      .def_readonly("energy", &ModuleReport::energy)
      .def_readonly("old_alpha", &ModuleReport::old_alpha)
      .def_readonly("new_alpha", &ModuleReport::new_alpha)
      .def_readonly("nonfinite", &ModuleReport::nonfinite)
      .def_readonly("note", &ModuleReport::note)
      .def("__repr__", [](const ModuleReport& r) {
        return "<ModuleReport " + r.stem + " rank " + std::to_string(r.old_rank) + " -> " +
               std::to_string(r.new_rank) + ">";
      });
  py::class_<ResizeReport>(m, "Report", "A resize report: the per-module rows and the CLI's summary figures.")
      .def_readonly("input", &ResizeReport::input)
      .def_readonly("output", &ResizeReport::output)
      .def_readonly("input_bytes", &ResizeReport::input_bytes)
      .def_readonly("output_bytes", &ResizeReport::output_bytes)
      .def_readonly("modules", &ResizeReport::modules)
      .def_readonly("passthrough", &ResizeReport::passthrough)
      .def_readonly("resized", &ResizeReport::resized)
      .def_readonly("unchanged", &ResizeReport::unchanged)
      .def_readonly("kept", &ResizeReport::kept)
      .def_readonly("average_fro", &ResizeReport::average_fro)
      .def_readonly("std_fro", &ResizeReport::std_fro)
      .def_readonly("energy_weighted_fro", &ResizeReport::energy_weighted_fro)
      .def_readonly("nonfinite", &ResizeReport::nonfinite)
      .def_readonly("seconds", &ResizeReport::seconds)
      .def_readonly("notes", &ResizeReport::notes)
      .def("to_dict", [](const ResizeReport& r) { return json_loads(report_json(r)); },
           "The CLI's --json report as a dict.")
      .def("text", &report_text, py::arg("verbose") = false, "The CLI's report text.")
      .def("__str__", [](const ResizeReport& r) { return report_text(r, false); });
}

void bind_errors(py::module_& m) {
  static py::exception<Error> error_type(m, "Error");
  error_type.attr("__module__") = "lorakit";
  error_type.attr("__doc__") = "A lorakit failure: .code names the failure mode, the message is the CLI's.";
  error_type.attr("code") = py::none();
  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const Error& e) {
      py::object instance = py::handle(error_type.ptr())(e.what());  // an instance, to carry .code
      instance.attr("code") = std::string(error_code_name(e.code()));
      PyErr_SetObject(error_type.ptr(), instance.ptr());
    }
  });
  m.attr("ERROR_CODES") = py::tuple(py::cast(error_code_names()));
}

}  // namespace
}  // namespace lorakit::python

PYBIND11_MODULE(_lorakit, m) {
  using namespace lorakit;
  using namespace lorakit::python;
  namespace fs = std::filesystem;
  m.doc() = "lorakit's library: exact LoRA resizing in factor space";
  bind_errors(m);
  bind_reports(m);
  m.attr("RESIZE_OPTIONS") = py::tuple(py::cast(resize_keywords()));
  m.attr("BATCH_OPTIONS") = py::tuple(py::cast(batch_keywords()));

  m.def("resize", [](const fs::path& input, const fs::path& output, py::kwargs keywords) {
    return attended_resize(keywords, [&](const ResizeOptions& options) { return resize_file(input, output, options); });
  }, py::arg("input"), py::arg("output"));
  m.def("plan", [](const fs::path& input, py::kwargs keywords) {
    return attended_resize(keywords, [&](const ResizeOptions& options) { return plan_file(input, options); });
  }, py::arg("input"));
  m.def("resize_bytes", [](const py::buffer& data, py::kwargs keywords) {
    const py::buffer_info view = data.request();  // held (and the buffer locked) while the work runs
    if (!PyBuffer_IsContiguous(view.view(), 'C')) throw Error(ErrorCode::invalid_argument, "data: expected contiguous bytes");
    const std::span<const std::byte> image(static_cast<const std::byte*>(view.ptr),
                                           static_cast<std::size_t>(view.size * view.itemsize));
    ResizedBytes result = attended_resize(keywords, [&](const ResizeOptions& options) { return resize_bytes(image, options); });
    return py::make_tuple(py::bytes(reinterpret_cast<const char*>(result.bytes.data()), result.bytes.size()),
                          std::move(result.report));
  }, py::arg("data"));
  // `lorakit inspect [--header-only]`: the analysis (every module's spectrum read once), or the header only.
  m.def("inspect", [](const fs::path& path, bool header_only, unsigned threads) {
    Attended attended{py::none()};
    return json_loads(attended.run([&] {
      const AdapterInput input = read_adapter_input(path);
      return header_only ? inspection_json(inspection_of(input)) : analysis_json(analysis_of(input, threads));
    }));
  }, py::arg("path"), py::kw_only(), py::arg("header_only") = false, py::arg("threads") = 0);
  m.def("inspect_text", [](const fs::path& path, bool header_only, unsigned threads) {
    Attended attended{py::none()};
    return attended.run([&] {
      const AdapterInput input = read_adapter_input(path);
      std::ostringstream text;
      if (header_only) {
        print_inspection(text, inspection_of(input));
      } else {
        print_analysis(text, analysis_of(input, threads));
      }
      return text.str();
    });
  }, py::arg("path"), py::kw_only(), py::arg("header_only") = false, py::arg("threads") = 0);
  // `lorakit inspect --html OUTPUT`: the page written atomically; with `output` None, returned instead.
  m.def("inspect_html", [](const fs::path& path, const std::optional<fs::path>& output, bool force, unsigned threads) {
    Attended attended{py::none()};
    const std::string page = attended.run([&] {
      if (output) refuse_existing_output(*output, force);  // before the analysis reads the file
      const AdapterInput input = read_adapter_input(path);
      std::string html = analysis_html(analysis_of(input, threads));
      if (output) write_page(*output, html, force, input.weights);
      return html;
    });
    return output ? py::object(py::none()) : py::object(py::str(page));
  }, py::arg("path"), py::arg("output") = py::none(), py::kw_only(), py::arg("force") = false, py::arg("threads") = 0);
  m.def("batch", &run_batch, py::arg("inputs"), py::arg("output_dir"));
  m.attr("PRESETS") = batch_presets();
}
