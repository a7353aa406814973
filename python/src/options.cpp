#include "options.hpp"

#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include "lorakit/error.hpp"
#include "resize_flags.hpp"

namespace lorakit::python {
namespace {

// A keyword's value, with its name for messages.
struct Value {
  const char* name;
  py::handle object;
};

[[noreturn]] void refuse(const Value& value, const char* expected) {
  throw Error(ErrorCode::invalid_argument,
              fmt::format("{}: expected {}, got {}", value.name, expected, py::repr(value.object).cast<std::string>()));
}

bool as_flag(const Value& value) {
  if (!py::isinstance<py::bool_>(value.object)) refuse(value, "True or False");
  return value.object.cast<bool>();
}

// The ranges are the CLI's (CLI11 checks on the flags' text).
std::uint64_t as_count(const Value& value, long long low, long long high) {
  const std::string expected = fmt::format("a whole number from {} to {}", low, high);
  if (!py::isinstance<py::int_>(value.object) || py::isinstance<py::bool_>(value.object)) refuse(value, expected.c_str());
  long long count = 0;
  try {
    count = value.object.cast<long long>();
  } catch (const py::cast_error&) {
    refuse(value, expected.c_str());
  }
  if (count < low || count > high) refuse(value, expected.c_str());
  return static_cast<std::uint64_t>(count);
}

double as_number(const Value& value) {
  const bool number = py::isinstance<py::int_>(value.object) || py::isinstance<py::float_>(value.object);
  if (!number || py::isinstance<py::bool_>(value.object)) refuse(value, "a number");
  return value.object.cast<double>();
}

std::string as_text(const Value& value) {
  if (!py::isinstance<py::str>(value.object)) refuse(value, "a string");
  return value.object.cast<std::string>();
}

// Options the CLI takes as text that also read naturally as numbers: min_retention=0.87, max_memory=2**30.
std::string as_text_or_number(const Value& value) {
  if (py::isinstance<py::str>(value.object)) return value.object.cast<std::string>();
  as_number(value);
  return py::str(value.object).cast<std::string>();
}

// One pattern or a list of them (the CLI's repeatable flag).
std::vector<std::string> as_patterns(const Value& value) {
  if (py::isinstance<py::str>(value.object)) return {value.object.cast<std::string>()};
  if (!py::isinstance<py::list>(value.object) && !py::isinstance<py::tuple>(value.object)) {
    refuse(value, "a string or a list of strings");
  }
  std::vector<std::string> patterns;
  for (const py::handle item : value.object) {
    if (!py::isinstance<py::str>(item)) refuse(value, "a string or a list of strings");
    patterns.push_back(item.cast<std::string>());
  }
  return patterns;
}

struct ResizeRequest {
  cli::ResizeFlags flags;
  bool force = false;
};

struct BatchRequest {
  ResizeRequest resize;
  batch::Options options;
  bool no_backup = false;
  std::string shard;
};

template <class Request>
struct Keyword {
  const char* name;
  void (*set)(Request&, const Value&);
};

// `lorakit resize`'s flags. A new CLI flag is one line here (and one in lorakit/__init__.pyi).
const Keyword<ResizeRequest> kResizeKeywords[] = {
    {"preset", [](ResizeRequest& r, const Value& v) { r.flags.preset = as_text(v); }},
    {"method", [](ResizeRequest& r, const Value& v) { r.flags.method = as_text(v); }},
    {"param", [](ResizeRequest& r, const Value& v) { r.flags.param = as_number(v); }},
    {"rank", [](ResizeRequest& r, const Value& v) { r.flags.rank = as_count(v, 1, 1000000); }},
    {"conv_rank", [](ResizeRequest& r, const Value& v) { r.flags.conv_rank = as_count(v, 1, 1000000); }},
    {"target_size", [](ResizeRequest& r, const Value& v) { r.flags.target_size = as_text_or_number(v); }},
    {"target_ratio", [](ResizeRequest& r, const Value& v) { r.flags.target_ratio = as_number(v); }},
    {"target_retention", [](ResizeRequest& r, const Value& v) { r.flags.target_retention = as_text_or_number(v); }},
    {"objective", [](ResizeRequest& r, const Value& v) { r.flags.objective = as_text(v); }},
    {"allow_drop", [](ResizeRequest& r, const Value& v) { r.flags.allow_drop = as_flag(v); }},
    {"include", [](ResizeRequest& r, const Value& v) { r.flags.include = as_patterns(v); }},
    {"exclude", [](ResizeRequest& r, const Value& v) { r.flags.exclude = as_patterns(v); }},
    {"drop", [](ResizeRequest& r, const Value& v) { r.flags.drop = as_patterns(v); }},
    {"min_rank", [](ResizeRequest& r, const Value& v) { r.flags.min_rank = as_count(v, 1, 1000000); }},
    {"max_rank", [](ResizeRequest& r, const Value& v) { r.flags.max_rank = as_count(v, 1, 1000000); }},
    {"minimal", [](ResizeRequest& r, const Value& v) { r.flags.minimal = as_flag(v); }},
    {"dtype", [](ResizeRequest& r, const Value& v) { r.flags.dtype = as_text(v); }},
    {"threads", [](ResizeRequest& r, const Value& v) { r.flags.threads = static_cast<unsigned>(as_count(v, 0, 4096)); }},
    {"to_lora", [](ResizeRequest& r, const Value& v) { r.flags.to_lora = as_flag(v); }},
    {"keep_lycoris", [](ResizeRequest& r, const Value& v) { r.flags.keep_lycoris = as_flag(v); }},
    {"device", [](ResizeRequest& r, const Value& v) { r.flags.device = as_text(v); }},
    {"force", [](ResizeRequest& r, const Value& v) { r.force = as_flag(v); }},
};

// `lorakit batch`'s own flags (its resize flags are the table above).
const Keyword<BatchRequest> kBatchKeywords[] = {
    {"recursive", [](BatchRequest& r, const Value& v) { r.options.scan.recursive = as_flag(v); }},
    {"suffix", [](BatchRequest& r, const Value& v) { r.options.scan.suffix = as_text(v); }},
    {"in_place", [](BatchRequest& r, const Value& v) { r.options.scan.in_place = as_flag(v); }},
    {"no_backup", [](BatchRequest& r, const Value& v) { r.no_backup = as_flag(v); }},
    {"min_retention",
     [](BatchRequest& r, const Value& v) { r.options.gates.min_retention = batch::parse_retention(as_text_or_number(v)); }},
    {"min_saving",
     [](BatchRequest& r, const Value& v) { r.options.gates.min_saving = batch::parse_saving(as_text_or_number(v)); }},
    {"on_discard",
     [](BatchRequest& r, const Value& v) {
       const std::optional<batch::OnDiscard> choice = batch::parse_on_discard(as_text(v));
       if (!choice) refuse(v, "'skip' or 'copy'");
       r.options.gates.on_discard = *choice;
     }},
    {"jobs", [](BatchRequest& r, const Value& v) { r.options.jobs = static_cast<unsigned>(as_count(v, 1, 4096)); }},
    {"max_memory",
     [](BatchRequest& r, const Value& v) { r.options.max_memory = batch::parse_memory(as_text_or_number(v)); }},
    {"nice", [](BatchRequest& r, const Value& v) { r.options.nice = as_flag(v); }},
    {"report", [](BatchRequest& r, const Value& v) { r.options.report = py::str(v.object).cast<std::string>(); }},
    {"html", [](BatchRequest& r, const Value& v) { r.options.html = py::str(v.object).cast<std::string>(); }},
    {"shard", [](BatchRequest& r, const Value& v) { r.shard = as_text(v); }},
};

template <class Request, std::size_t N>
const Keyword<Request>* find(const Keyword<Request> (&table)[N], std::string_view name) {
  for (const Keyword<Request>& keyword : table) {
    if (name == keyword.name) return &keyword;
  }
  return nullptr;
}

template <class Request, std::size_t N>
void names_of(const Keyword<Request> (&table)[N], std::vector<std::string>& names) {
  for (const Keyword<Request>& keyword : table) {
    if (std::find(names.begin(), names.end(), keyword.name) == names.end()) names.emplace_back(keyword.name);
  }
}

[[noreturn]] void unknown_keyword(const std::string& name) {
  throw py::type_error(fmt::format("unexpected keyword argument '{}'", name));
}

ResizeOptions converted(const ResizeRequest& request) {
  ResizeOptions options = cli::to_resize_options(request.flags);
  options.force = request.force;
  return options;
}

// What `lorakit batch` does with its flags (tools/lorakit/batch.cpp), on the same library calls.
batch::Options converted(BatchRequest request) {
  if (request.no_backup && !request.options.scan.in_place) {
    throw Error(ErrorCode::invalid_argument, "--no-backup applies to --in-place only");
  }
  batch::Options options = std::move(request.options);
  options.resize = cli::to_resize_options(request.resize.flags);
  options.force = request.resize.force;
  options.backup = !request.no_backup;
  if (request.shard == "auto") {
    options.shard = batch::shard_from_environment(batch::process_environment());
  } else if (!request.shard.empty()) {
    options.shard = batch::parse_shard(request.shard);
  }
  return options;
}

}  // namespace

std::vector<std::string> resize_keywords() {
  std::vector<std::string> names;
  names_of(kResizeKeywords, names);
  return names;
}

std::vector<std::string> batch_keywords() {
  std::vector<std::string> names;
  names_of(kBatchKeywords, names);
  names_of(kResizeKeywords, names);
  return names;
}

ResizeOptions resize_options(const py::dict& keywords) {
  ResizeRequest request;
  for (const auto& [key, value] : keywords) {
    const std::string name = py::str(key);
    const Keyword<ResizeRequest>* keyword = find(kResizeKeywords, name);
    if (keyword == nullptr) unknown_keyword(name);
    if (!value.is_none()) keyword->set(request, {keyword->name, value});
  }
  return converted(request);
}

batch::Options batch_options(const py::dict& keywords) {
  BatchRequest request;
  for (const auto& [key, value] : keywords) {
    const std::string name = py::str(key);
    if (value.is_none()) {
      if (find(kBatchKeywords, name) == nullptr && find(kResizeKeywords, name) == nullptr) unknown_keyword(name);
      continue;
    }
    if (const Keyword<BatchRequest>* keyword = find(kBatchKeywords, name)) {
      keyword->set(request, {keyword->name, value});
    } else if (const Keyword<ResizeRequest>* resize = find(kResizeKeywords, name)) {
      resize->set(request.resize, {resize->name, value});
    } else {
      unknown_keyword(name);
    }
  }
  return converted(std::move(request));
}

}  // namespace lorakit::python
