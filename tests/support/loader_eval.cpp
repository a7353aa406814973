// Loader semantics, read again from FORMATS.md §2–§3 (independent of src/adapter).
#include "loader_eval.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <regex>
#include <string_view>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::testsupport {
namespace {

// Object keys in file order: PEFT takes the first pattern key that matches.
using Json = nlohmann::ordered_json;

enum class R {
  down, up, mid, alpha, scale, dora,
  w1a, w1b, w2a, w2b, t1, t2,
  k_w1, k_w1a, k_w1b, k_w2, k_w2a, k_w2b, k_t2
};

const std::vector<std::pair<std::string, R>>& suffixes() {
  static const std::vector<std::pair<std::string, R>> table = [] {
    std::vector<std::pair<std::string, R>> t = {
        {".lora_down.weight", R::down},
        {".lora_up.weight", R::up},
        {".lora_mid.weight", R::mid},
        {".lora_A.weight", R::down},
        {".lora_B.weight", R::up},
        {".lora_A.default.weight", R::down},
        {".lora_B.default.weight", R::up},
        {".lora.down.weight", R::down},
        {".lora.up.weight", R::up},
        {".lora_linear_layer.down.weight", R::down},
        {".lora_linear_layer.up.weight", R::up},
        {".down.weight", R::down},
        {".up.weight", R::up},
        {".down", R::down},
        {".up", R::up},
        {".alpha", R::alpha},
        {".scale", R::scale},
        {".dora_scale", R::dora},
        {".lora_magnitude_vector", R::dora},
        {".lora_magnitude_vector.weight", R::dora},
        {".lora_magnitude_vector.default.weight", R::dora},
        {".hada_w1_a", R::w1a},
        {".hada_w1_b", R::w1b},
        {".hada_w2_a", R::w2a},
        {".hada_w2_b", R::w2b},
        {".hada_t1", R::t1},
        {".hada_t2", R::t2},
        {".lokr_w1", R::k_w1},
        {".lokr_w1_a", R::k_w1a},
        {".lokr_w1_b", R::k_w1b},
        {".lokr_w2", R::k_w2},
        {".lokr_w2_a", R::k_w2a},
        {".lokr_w2_b", R::k_w2b},
        {".lokr_t2", R::k_t2},
    };
    std::stable_sort(t.begin(), t.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    return t;
  }();
  return table;
}

bool is_factor(R r) { return r != R::alpha && r != R::scale && r != R::dora; }

using Shape = std::vector<std::uint64_t>;
using Tensors = std::map<R, const TensorInfo*>;

std::uint64_t product(Shape::const_iterator begin, Shape::const_iterator end) {
  return std::accumulate(begin, end, std::uint64_t{1}, std::multiplies<>());
}

class Evaluator {
 public:
  Evaluator(const std::filesystem::path& path, const EvalOptions& options)
      : reader_(path), file_(path.string()), options_(options) {
    const auto it = reader_.header().metadata.find("lora_adapter_metadata");
    if (it != reader_.header().metadata.end()) {
      peft_ = Json::parse(it->second, nullptr, false);
      if (peft_.is_discarded() || !peft_.is_object()) {
        throw Error(ErrorCode::metadata_invalid, file_, "", "lora_adapter_metadata is not a JSON object");
      }
    }
    if (!options.peft_config.empty()) read_sidecar(options.peft_config);
  }

  std::map<std::string, Tensors> group() const {
    std::map<std::string, Tensors> stems;
    for (const TensorInfo& info : reader_.header().tensors) {
      for (const auto& [suffix, role] : suffixes()) {
        const std::string& n = info.name;
        if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
          stems[n.substr(0, n.size() - suffix.size())][role] = &info;
          break;
        }
      }
    }
    return stems;
  }

  LoaderModule evaluate(const std::string& stem, const Tensors& t) const {
    LoaderModule m;
    m.stem = stem;
    m.dora = t.count(R::dora) != 0;
    if (t.count(R::w1a) || t.count(R::w1b) || t.count(R::w2a) || t.count(R::w2b)) {
      loha(m, t);
    } else if (t.count(R::k_w1) || t.count(R::k_w1a) || t.count(R::k_w2) || t.count(R::k_w2a)) {
      lokr(m, t);
    } else {
      lora(m, t);
    }
    m.delta *= m.scale;
    return m;
  }

 private:
  const TensorInfo& need(const Tensors& t, R role, const std::string& stem, const char* what) const {
    const auto it = t.find(role);
    if (it == t.end())
      throw Error(ErrorCode::adapter_incomplete, file_, stem, std::string("missing ") + what);
    return *it->second;
  }
  const TensorInfo* maybe(const Tensors& t, R role) const {
    const auto it = t.find(role);
    return it == t.end() ? nullptr : it->second;
  }

  [[noreturn]] void mismatch(const TensorInfo& info, const std::string& what) const {
    throw Error(ErrorCode::adapter_shape_mismatch, file_, info.name, what);
  }

  // The tensor as rows = shape[0], cols = product of the rest (row-major flattening).
  Eigen::MatrixXd matrix(const TensorInfo& info) const {
    if (info.shape.empty()) mismatch(info, "expected at least one dimension");
    const auto rows = static_cast<Eigen::Index>(info.shape[0]);
    const auto cols = static_cast<Eigen::Index>(product(info.shape.begin() + 1, info.shape.end()));
    const std::vector<double> v = reader_.read_doubles(info);
    Eigen::MatrixXd m(rows, cols);
    for (Eigen::Index i = 0; i < rows; ++i) {
      for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = v[static_cast<std::size_t>(i * cols + j)];
    }
    return m;
  }

  double scalar(const TensorInfo& info) const {
    if (info.numel() != 1) throw Error(ErrorCode::adapter_invalid_alpha, file_, info.name, "not a scalar");
    return reader_.read_doubles(info).at(0);
  }

  void expect_trailing_ones(const TensorInfo& info, std::size_t from) const {
    for (std::size_t i = from; i < info.shape.size(); ++i) {
      if (info.shape[i] != 1) mismatch(info, "expected size 1 in dimension " + std::to_string(i));
    }
  }

  // Tucker fold: X[i, (c, s)] = Σ_j core[i, j, s] · b[j, c]; core (r, r, k…), b (r, n).
  Eigen::MatrixXd tucker_fold(const TensorInfo& core_info, const Eigen::MatrixXd& b) const {
    const Eigen::MatrixXd core = matrix(core_info);  // r × (r·K)
    const Eigen::Index r = b.rows();
    if (core_info.shape.size() < 2 || static_cast<Eigen::Index>(core_info.shape[0]) != r ||
        static_cast<Eigen::Index>(core_info.shape[1]) != r) {
      mismatch(core_info, "Tucker core must be (r, r, k...) with r = " + std::to_string(r));
    }
    const Eigen::Index k = core.cols() / r;
    const Eigen::Index n = b.cols();
    Eigen::MatrixXd x = Eigen::MatrixXd::Zero(core.rows(), n * k);
    for (Eigen::Index i = 0; i < core.rows(); ++i) {
      for (Eigen::Index j = 0; j < r; ++j) {
        for (Eigen::Index s = 0; s < k; ++s) {
          const double c = core(i, j * k + s);
          if (c == 0) continue;
          for (Eigen::Index col = 0; col < n; ++col) x(i, col * k + s) += c * b(j, col);
        }
      }
    }
    return x;
  }

  static Shape kernel_of(const TensorInfo& info, std::size_t from) {
    return Shape(info.shape.begin() + static_cast<std::ptrdiff_t>(from), info.shape.end());
  }

  static Shape concat(Shape a, const Shape& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  void lora(LoaderModule& m, const Tensors& t) const {
    const TensorInfo& down = need(t, R::down, m.stem, "down factor");
    const TensorInfo& up = need(t, R::up, m.stem, "up factor");
    const Eigen::MatrixXd d = matrix(down);
    const Eigen::MatrixXd u = matrix(up);
    if (up.shape.size() < 2 || up.shape[1] != down.shape[0]) mismatch(up, "up columns differ from down rows");
    expect_trailing_ones(up, 2);
    m.rank = down.shape[0];
    if (const TensorInfo* mid = maybe(t, R::mid)) {
      expect_trailing_ones(down, 2);
      m.kind = "lora_tucker";
      m.delta = u * tucker_fold(*mid, d);
      m.weight_shape = concat({up.shape[0], down.shape[1]}, kernel_of(*mid, 2));
    } else {
      m.kind = "lora";
      m.delta = u * d;
      m.weight_shape = concat({up.shape[0]}, kernel_of(down, 1));
    }
    resolve_scale(m, t, m.rank, true);
  }

  Eigen::MatrixXd hada_term(const Tensors& t, R a, R b, R core, LoaderModule& m) const {
    const TensorInfo& wa = need(t, a, m.stem, "hada_w*_a");
    const TensorInfo& wb = need(t, b, m.stem, "hada_w*_b");
    const Eigen::MatrixXd ma = matrix(wa);
    const Eigen::MatrixXd mb = matrix(wb);
    if (const TensorInfo* tc = maybe(t, core)) {
      if (ma.rows() != mb.rows()) mismatch(wa, "Tucker LoHa: w_a and w_b must both be (r, ·)");
      m.weight_shape = concat({wa.shape[1], wb.shape[1]}, kernel_of(*tc, 2));
      return ma.transpose() * tucker_fold(*tc, mb);
    }
    if (ma.cols() != mb.rows()) mismatch(wb, "w_a columns differ from w_b rows");
    m.weight_shape = {wa.shape[0], static_cast<std::uint64_t>(mb.cols())};
    return ma * mb;
  }

  void loha(LoaderModule& m, const Tensors& t) const {
    const bool tucker = t.count(R::t1) != 0;
    m.kind = tucker ? "loha_tucker" : "loha";
    const Eigen::MatrixXd p1 = hada_term(t, R::w1a, R::w1b, R::t1, m);
    const Eigen::MatrixXd p2 = hada_term(t, R::w2a, R::w2b, R::t2, m);
    if (p1.rows() != p2.rows() || p1.cols() != p2.cols())
      mismatch(need(t, R::w2a, m.stem, ""), "terms differ in shape");
    m.delta = p1.cwiseProduct(p2);
    m.rank = need(t, R::w1b, m.stem, "hada_w1_b").shape[0];
    resolve_scale(m, t, m.rank, true);
  }

  void lokr(LoaderModule& m, const Tensors& t) const {
    m.kind = "lokr";
    Eigen::MatrixXd w1;
    std::uint64_t w1_rank = 0;
    if (const TensorInfo* full = maybe(t, R::k_w1)) {
      w1 = matrix(*full);
    } else {
      const TensorInfo& a = need(t, R::k_w1a, m.stem, "lokr_w1 or lokr_w1_a");
      const TensorInfo& b = need(t, R::k_w1b, m.stem, "lokr_w1_b");
      const Eigen::MatrixXd ma = matrix(a);
      const Eigen::MatrixXd mb = matrix(b);
      if (ma.cols() != mb.rows()) mismatch(b, "lokr_w1_a columns differ from lokr_w1_b rows");
      w1 = ma * mb;
      w1_rank = b.shape[0];
    }
    Eigen::MatrixXd w2;
    std::uint64_t w2_rank = 0;
    Shape kernel;
    std::uint64_t d = 0;
    if (const TensorInfo* full = maybe(t, R::k_w2)) {
      w2 = matrix(*full);
      d = full->shape.size() > 1 ? full->shape[1] : 1;
      kernel = full->shape.size() > 2 ? kernel_of(*full, 2) : Shape{};
    } else {
      const TensorInfo& a = need(t, R::k_w2a, m.stem, "lokr_w2 or lokr_w2_a");
      const TensorInfo& b = need(t, R::k_w2b, m.stem, "lokr_w2_b");
      const Eigen::MatrixXd ma = matrix(a);
      const Eigen::MatrixXd mb = matrix(b);
      w2_rank = b.shape[0];
      if (const TensorInfo* t2 = maybe(t, R::k_t2)) {
        if (ma.rows() != mb.rows()) mismatch(a, "Tucker LoKr: lokr_w2_a and lokr_w2_b must both be (r, ·)");
        w2 = ma.transpose() * tucker_fold(*t2, mb);
        d = b.shape[1];
        kernel = kernel_of(*t2, 2);
      } else {
        if (ma.cols() != mb.rows()) mismatch(b, "lokr_w2_a columns differ from lokr_w2_b rows");
        w2 = ma * mb;
        d = static_cast<std::uint64_t>(mb.cols());
      }
    }
    m.delta.resize(w1.rows() * w2.rows(), w1.cols() * w2.cols());
    for (Eigen::Index i = 0; i < w1.rows(); ++i) {
      for (Eigen::Index j = 0; j < w1.cols(); ++j) {
        m.delta.block(i * w2.rows(), j * w2.cols(), w2.rows(), w2.cols()) = w1(i, j) * w2;
      }
    }
    m.weight_shape = concat(
        {static_cast<std::uint64_t>(m.delta.rows()), static_cast<std::uint64_t>(w1.cols()) * d}, kernel);
    const bool both_full = w1_rank == 0 && w2_rank == 0;
    m.rank = w2_rank != 0 ? w2_rank : w1_rank;
    resolve_scale(m, t, m.rank, !both_full);
  }

  void read_sidecar(const std::filesystem::path& path) {
    std::ifstream in(path);
    sidecar_ = Json::parse(in, nullptr, false);
    if (sidecar_.is_discarded() || !sidecar_.is_object()) {
      throw Error(ErrorCode::metadata_invalid, path.string(), "", "not a JSON object");
    }
    if (sidecar_.value("peft_type", "LORA") != "LORA") {
      throw Error(ErrorCode::metadata_invalid, path.string(), "", "not a LoRA config");
    }
  }

  // `alpha_applies`: false for a LoKr whose factors are both full (loaders use scale 1).
  void resolve_scale(LoaderModule& m, const Tensors& t, std::uint64_t rank, bool alpha_applies) const {
    if (!sidecar_.is_null()) {
      m.scale = sidecar_scale(m, t);
      m.scale_source = "peft_config";
    } else if (const TensorInfo* s = maybe(t, R::scale)) {
      m.scale = scalar(*s);
      m.scale_source = "scale";
    } else if (const TensorInfo* a = maybe(t, R::alpha); a && alpha_applies) {
      const double alpha = scalar(*a);
      m.scale = alpha == 0 && options_.zero_alpha_is_rank ? 1.0 : alpha / static_cast<double>(rank);
      m.scale_source = "alpha";
    } else if (!peft_.is_null() && alpha_applies) {
      m.scale = peft_scale(m);
      m.scale_source = "peft_metadata";
    } else {
      m.scale = 1.0;
      m.scale_source = "none";
    }
  }

  // diffusers builds a LoraConfig from the metadata as-is: the rank it expects must be the file's.
  double peft_scale(const LoaderModule& m) const {
    const std::string component = m.stem.substr(0, m.stem.find('.'));
    Json cfg = Json::object();
    const std::string prefix = component + ".";
    for (const auto& [key, value] : peft_.items()) {
      if (key.rfind(prefix, 0) == 0) cfg[key.substr(prefix.size())] = value;
    }
    if (cfg.empty()) cfg = peft_;
    const double r = pattern_value(cfg, "rank_pattern", m.stem).value_or(cfg.value("r", 8.0));
    const double alpha = pattern_value(cfg, "alpha_pattern", m.stem).value_or(cfg.value("lora_alpha", 8.0));
    if (static_cast<double>(m.rank) != r) {
      throw Error(ErrorCode::adapter_shape_mismatch, file_, m.stem,
                  "rank " + std::to_string(m.rank) + " differs from lora_adapter_metadata r " +
                      std::to_string(r) + " (diffusers would fail to load it)");
    }
    const bool rslora = cfg.value("use_rslora", false);
    return rslora ? alpha / std::sqrt(r) : alpha / r;
  }

  // PeftModel.from_pretrained: LoraModel builds a layer for every targeted module of the base model at
  // the config's rank, then loads `base_model.model.NAME.lora_A.weight`, which must fit that layer.
  double sidecar_scale(const LoaderModule& m, const Tensors& t) const {
    const std::string prefix = "base_model.model.";
    if (m.kind != "lora" || m.stem.rfind(prefix, 0) != 0) {
      throw Error(ErrorCode::adapter_incomplete, file_, m.stem,
                  "PEFT's from_pretrained loads base_model.model.NAME.lora_A/lora_B pairs only");
    }
    const std::string name = m.stem.substr(prefix.size());
    if (!targeted(name)) {
      throw Error(ErrorCode::adapter_incomplete, file_, m.stem,
                  "target_modules selects no layer of this name: PEFT would ignore its tensors");
    }
    const double r = pattern_value(sidecar_, "rank_pattern", name).value_or(sidecar_.value("r", 8.0));
    const double alpha =
        pattern_value(sidecar_, "alpha_pattern", name).value_or(sidecar_.value("lora_alpha", 8.0));
    const TensorInfo& up = need(t, R::up, m.stem, "lora_B");
    if (static_cast<double>(m.rank) != r || static_cast<double>(up.shape.at(1)) != r) {
      throw Error(ErrorCode::adapter_shape_mismatch, file_, m.stem,
                  "PEFT builds this layer at rank " + std::to_string(r) + " but the tensors have rank " +
                      std::to_string(m.rank) + ": from_pretrained would fail");
    }
    return sidecar_.value("use_rslora", false) ? alpha / std::sqrt(r) : alpha / r;
  }

  // check_target_module_exists: a string is a regex for the whole name; a list holds names or
  // '.'-preceded name suffixes; exclude_modules takes modules out the same way. Missing: PEFT picks
  // targets by model type, which says nothing about this file.
  bool targeted(const std::string& name) const {
    const auto selects = [&](const Json& targets) {
      if (targets.is_string()) return std::regex_match(name, std::regex(targets.get<std::string>()));
      if (!targets.is_array()) return false;
      return std::any_of(targets.begin(), targets.end(), [&](const Json& target) {
        const std::string& t = target.get_ref<const std::string&>();
        return name == t || (name.size() > t.size() && name.ends_with(t) && name[name.size() - t.size() - 1] == '.');
      });
    };
    const auto field = [&](const char* key) { return sidecar_.contains(key) ? sidecar_[key] : Json(); };
    const Json targets = field("target_modules");
    if (selects(field("exclude_modules"))) return false;
    return targets.is_null() || targets == "all-linear" || selects(targets);
  }

  // The value of the first key of config[pattern] (in file order) that matches `name`.
  std::optional<double> pattern_value(const Json& config, const char* pattern,
                                      const std::string& name) const {
    if (!config.contains(pattern) || !config[pattern].is_object()) return std::nullopt;
    for (const auto& [key, value] : config[pattern].items()) {
      if (std::regex_match(name, pattern_regex(key))) return value.get<double>();
    }
    return std::nullopt;
  }

  // PEFT matches rank/alpha pattern keys as regular expressions anchored at a module-name boundary.
  const std::regex& pattern_regex(const std::string& pattern) const {
    auto it = regex_cache_.find(pattern);
    if (it == regex_cache_.end())
      it = regex_cache_.emplace(pattern, std::regex("(.*\\.)?(" + pattern + ")$")).first;
    return it->second;
  }

  Reader reader_;
  std::string file_;
  EvalOptions options_;
  Json peft_;
  Json sidecar_;
  mutable std::map<std::string, std::regex> regex_cache_;
};

bool has_factor(const Tensors& tensors) {
  return std::any_of(tensors.begin(), tensors.end(), [](const auto& e) { return is_factor(e.first); });
}

}  // namespace

struct LoaderFile::State {
  Evaluator evaluator;
  std::map<std::string, Tensors> modules;  // stems with factors
};

LoaderFile::LoaderFile(const std::filesystem::path& file, const EvalOptions& options)
    : state_(new State{Evaluator(file, options), {}}) {
  for (auto& [stem, tensors] : state_->evaluator.group()) {
    if (has_factor(tensors)) state_->modules.emplace(stem, std::move(tensors));
  }
  for (const auto& entry : state_->modules) stems_.push_back(entry.first);
}

LoaderFile::~LoaderFile() = default;

LoaderModule LoaderFile::module(const std::string& stem) const {
  const auto found = state_->modules.find(stem);
  if (found == state_->modules.end()) throw Error(ErrorCode::adapter_incomplete, "", stem, "no such module");
  return state_->evaluator.evaluate(stem, found->second);
}

std::vector<LoaderModule> loader_modules(const std::filesystem::path& file, const EvalOptions& options,
                                         const std::function<bool(const std::string&)>& select) {
  const LoaderFile loader(file, options);
  std::vector<LoaderModule> modules;
  for (const std::string& stem : loader.stems()) {
    if (!select || select(stem)) modules.push_back(loader.module(stem));
  }
  return modules;
}

std::map<std::string, Eigen::MatrixXd> loader_deltas(const std::filesystem::path& file,
                                                     const EvalOptions& options) {
  std::map<std::string, Eigen::MatrixXd> deltas;
  for (LoaderModule& m : loader_modules(file, options)) deltas.emplace(m.stem, std::move(m.delta));
  return deltas;
}

double relative_error(const Eigen::MatrixXd& before, const Eigen::MatrixXd& after) {
  if (before.rows() != after.rows() || before.cols() != after.cols())
    return std::numeric_limits<double>::infinity();
  const double base = before.norm();
  const double diff = (after - before).norm();
  if (base == 0) return diff == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return diff / base;
}

Eigen::VectorXd singular_values(const Eigen::MatrixXd& m) {
  if (m.size() == 0) return {};
  return Eigen::BDCSVD<Eigen::MatrixXd>(m).singularValues();
}

RawTensor matrix_tensor(const std::string& name, DType dtype, std::vector<std::uint64_t> shape,
                        const Eigen::MatrixXd& m) {
  RawTensor t{name, dtype, std::move(shape), {}, {}};
  const std::uint64_t numel = product(t.shape.begin(), t.shape.end());
  if (numel != static_cast<std::uint64_t>(m.size())) {
    throw Error(ErrorCode::invalid_argument, "matrix_tensor: '" + name + "' shape does not hold the matrix");
  }
  t.values.reserve(numel);
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index j = 0; j < m.cols(); ++j) t.values.push_back(m(i, j));
  }
  return t;
}

RawTensor scalar_tensor(const std::string& name, DType dtype, double value) {
  return RawTensor{name, dtype, {}, {value}, {}};
}

}  // namespace lorakit::testsupport
