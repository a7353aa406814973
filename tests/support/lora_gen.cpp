// Deterministic realistic LoRA files: naming families, module kinds, trained-like spectra, streaming
// writer (one module's values in memory at a time, tensors written in the reference layout order).
#include "lora_gen.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "gen_arch.hpp"
#include "gen_random.hpp"
#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"

namespace lorakit::testsupport {
namespace {

using detail::Arch;
using detail::ArchModule;
using detail::Component;
using detail::PathStyle;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_argument, "lorakit-gen: " + message);
}

// ---- Options -------------------------------------------------------------------------------------

enum class Family { kohya, kohya_fun, lycoris, peft, comfy, controllora, legacy, xlabs };
enum class Algo { lora, loha, lokr };

const std::map<std::string, Family>& families() {
  static const std::map<std::string, Family> table = {
      {"kohya", Family::kohya},   {"kohya-fun", Family::kohya_fun}, {"lycoris", Family::lycoris},
      {"peft", Family::peft},     {"comfy", Family::comfy},         {"controllora", Family::controllora},
      {"legacy", Family::legacy}, {"xlabs", Family::xlabs}};
  return table;
}

const std::vector<std::string>& kinds() {
  static const std::vector<std::string> table = {"lora", "locon", "tucker", "dora", "loha", "lokr"};
  return table;
}

bool kohya_like(Family f) { return f == Family::kohya || f == Family::kohya_fun || f == Family::lycoris; }

struct Options {
  Family family = Family::kohya;
  Algo algo = Algo::lora;
  bool conv = false;
  bool tucker = false;
  bool dora = false;
  PathStyle style = PathStyle::trainer;
};

Options resolve_options(const GenSpec& spec) {
  const auto fam = families().find(spec.family);
  if (fam == families().end()) invalid("unknown family '" + spec.family + "'");
  if (!detail::known_arch(spec.arch)) invalid("unknown architecture '" + spec.arch + "'");
  if (std::find(kinds().begin(), kinds().end(), spec.kind) == kinds().end()) {
    invalid("unknown kind '" + spec.kind + "'");
  }
  if (spec.rank == 0) invalid("rank must be at least 1");
  if (spec.shrink == 0) invalid("shrink must be at least 1");
  if (spec.copies == 0) invalid("copies must be at least 1");
  if (!is_float(spec.dtype) || (spec.alpha_dtype && !is_float(*spec.alpha_dtype))) {
    invalid("dtypes must be float types");
  }
  Options o;
  o.family = fam->second;
  o.conv = spec.conv || spec.kind == "locon" || spec.kind == "tucker";
  o.tucker = spec.tucker || spec.kind == "tucker";
  o.dora = spec.kind == "dora";
  o.algo = spec.kind == "loha" ? Algo::loha : spec.kind == "lokr" ? Algo::lokr : Algo::lora;
  const bool lycoris_kind = o.tucker || o.algo != Algo::lora;
  if (lycoris_kind && !kohya_like(o.family))
    invalid("kind '" + spec.kind + "' needs family kohya or lycoris");
  if (o.dora && !(kohya_like(o.family) || o.family == Family::peft))
    invalid("dora needs family kohya or peft");
  const bool diffusers =
      o.family == Family::peft || o.family == Family::lycoris || o.family == Family::legacy;
  if (diffusers && !detail::has_diffusers_paths(spec.arch)) {
    invalid("family '" + spec.family + "' has no diffusers module paths for '" + spec.arch + "'");
  }
  o.style = diffusers ? PathStyle::diffusers : PathStyle::trainer;
  const bool wan = spec.arch.rfind("wan", 0) == 0;
  if (o.family == Family::kohya_fun && !wan) invalid("family kohya-fun is for wan architectures only");
  if (o.family == Family::legacy && spec.arch != "sd15") invalid("family legacy is for sd15 only");
  if (o.family == Family::xlabs && spec.arch != "flux") invalid("family xlabs is for flux only");
  if ((o.family == Family::comfy || o.family == Family::controllora) && spec.arch == "sd15") {
    invalid("family '" + spec.family + "' is not available for sd15");
  }
  if ((spec.peft_infix || spec.peft_metadata != PeftMetadata::none) && o.family != Family::peft) {
    invalid("peft options need family peft");
  }
  if (spec.peft_infix && spec.peft_metadata == PeftMetadata::prefixed) {
    invalid("peft infix files carry no component prefix");
  }
  if (spec.peft_infix && spec.peft_metadata == PeftMetadata::sidecar) {
    invalid("PEFT's save_pretrained strips the adapter name: a sidecar adapter has no infix");
  }
  if (spec.rslora && spec.peft_metadata == PeftMetadata::none) invalid("rslora needs a PEFT config");
  if (std::find(spec.rank_cycle.begin(), spec.rank_cycle.end(), 0) != spec.rank_cycle.end()) {
    invalid("ranks must be at least 1");
  }
  return o;
}

// ---- Naming --------------------------------------------------------------------------------------

enum class Role {
  down, up, mid, alpha, dora,
  hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b, hada_t1, hada_t2,
  lokr_w1, lokr_w1_a, lokr_w1_b, lokr_w2, lokr_w2_a, lokr_w2_b, lokr_t2
};

std::string underscored(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string peft_component(const Arch& arch, Component c) {
  switch (c) {
    case Component::body:
      return arch.is_unet ? "unet" : "transformer";
    case Component::te:
    case Component::te1:
      return "text_encoder";
    case Component::te2:
      return "text_encoder_2";
  }
  return {};
}

std::string kohya_prefix(Family family, Component c) {
  switch (c) {
    case Component::body:
      return family == Family::kohya_fun ? "lora_unet__" : "lora_unet_";
    case Component::te:
      return "lora_te_";
    case Component::te1:
      return "lora_te1_";
    case Component::te2:
      return "lora_te2_";
  }
  return {};
}

struct Naming {
  std::string stem;
  std::string down;  // suffixes of the two LoRA factors
  std::string up;
};

// Old diffusers: attention processors, LoRACompatibleLinear/Conv (`.lora.`), text encoder
// `lora_linear_layer`.
Naming legacy_naming(const ArchModule& m) {
  if (m.component != Component::body) {
    return {"text_encoder." + m.path, ".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"};
  }
  for (const char* proj : {"to_q", "to_k", "to_v", "to_out.0"}) {
    const std::string tail = std::string(".") + proj;
    const auto attn = m.path.rfind(".attn");
    if (ends_with(m.path, tail) && attn != std::string::npos && m.path.size() - tail.size() > attn) {
      const std::string parent = m.path.substr(0, m.path.size() - tail.size());
      const std::string proc = std::string(proj) == "to_out.0" ? "to_out_lora" : std::string(proj) + "_lora";
      return {"unet." + parent + ".processor." + proc, ".down.weight", ".up.weight"};
    }
  }
  return {"unet." + m.path, ".lora.down.weight", ".lora.up.weight"};
}

// xlabs Flux: only the double blocks' attention projections, as processor LoRAs.
std::optional<Naming> xlabs_naming(const ArchModule& m) {
  for (const auto& [stream, index] : {std::pair{"img", "1"}, std::pair{"txt", "2"}}) {
    for (const char* proj : {"qkv", "proj"}) {
      const std::string tail = std::string(".") + stream + "_attn." + proj;
      if (m.path.rfind("double_blocks.", 0) == 0 && ends_with(m.path, tail)) {
        const std::string block = m.path.substr(0, m.path.size() - tail.size());
        return Naming{block + ".processor." + proj + "_lora" + index, ".down.weight", ".up.weight"};
      }
    }
  }
  return std::nullopt;
}

// nullopt: the family does not adapt this module.
std::optional<Naming> module_naming(const Options& o, const GenSpec& spec, const Arch& arch,
                                    const ArchModule& m) {
  const bool body = m.component == Component::body;
  switch (o.family) {
    case Family::kohya:
    case Family::kohya_fun:
      return Naming{kohya_prefix(o.family, m.component) + underscored(m.path), ".lora_down.weight",
                    ".lora_up.weight"};
    case Family::lycoris:
      if (!body) return std::nullopt;
      return Naming{"lycoris_" + underscored(m.path), ".lora_down.weight", ".lora_up.weight"};
    case Family::peft:
      if (spec.peft_infix || spec.peft_metadata == PeftMetadata::sidecar) {
        if (!body) return std::nullopt;
        const std::string infix = spec.peft_infix ? ".default" : "";
        return Naming{"base_model.model." + m.path, ".lora_A" + infix + ".weight", ".lora_B" + infix + ".weight"};
      }
      return Naming{peft_component(arch, m.component) + "." + m.path, ".lora_A.weight", ".lora_B.weight"};
    case Family::comfy:
      if (!body) return std::nullopt;
      return Naming{"diffusion_model." + m.path, ".lora_A.weight", ".lora_B.weight"};
    case Family::controllora:
      if (!body) return std::nullopt;
      return Naming{m.path, ".down", ".up"};
    case Family::legacy:
      return legacy_naming(m);
    case Family::xlabs:
      return xlabs_naming(m);
  }
  return std::nullopt;
}

std::string role_suffix(const Naming& naming, Role role, bool peft_infix) {
  switch (role) {
    case Role::down:
      return naming.down;
    case Role::up:
      return naming.up;
    case Role::mid:
      return ".lora_mid.weight";
    case Role::alpha:
      return ".alpha";
    case Role::dora:
      if (naming.down.rfind(".lora_A", 0) == 0) {
        return peft_infix ? ".lora_magnitude_vector.default.weight" : ".lora_magnitude_vector";
      }
      return ".dora_scale";
    case Role::hada_w1_a:
      return ".hada_w1_a";
    case Role::hada_w1_b:
      return ".hada_w1_b";
    case Role::hada_w2_a:
      return ".hada_w2_a";
    case Role::hada_w2_b:
      return ".hada_w2_b";
    case Role::hada_t1:
      return ".hada_t1";
    case Role::hada_t2:
      return ".hada_t2";
    case Role::lokr_w1:
      return ".lokr_w1";
    case Role::lokr_w1_a:
      return ".lokr_w1_a";
    case Role::lokr_w1_b:
      return ".lokr_w1_b";
    case Role::lokr_w2:
      return ".lokr_w2";
    case Role::lokr_w2_a:
      return ".lokr_w2_a";
    case Role::lokr_w2_b:
      return ".lokr_w2_b";
    case Role::lokr_t2:
      return ".lokr_t2";
  }
  return {};
}

// ---- Planning ------------------------------------------------------------------------------------

using Shape = std::vector<std::uint64_t>;

struct PlannedTensor {
  Role role;
  TensorSpec spec;
};

struct PlannedModule {
  ArchModule shape;  // shrunk
  GenModule info;
  Algo algo = Algo::lora;
  bool tucker = false;
  DType dtype = DType::F16;
  double alpha = 0;
  std::uint64_t seed = 0;
  std::uint64_t a = 0, b = 0, c = 0, d = 0;  // LoKr: out = a·b, in = c·d
  bool w1_decomposed = false;
  bool w2_decomposed = false;
  std::vector<PlannedTensor> tensors;
};

struct PassTensor {
  TensorSpec spec;
  std::uint64_t seed = 0;
};

struct Plan {
  std::vector<PlannedModule> modules;
  std::vector<PassTensor> passthrough;
  Metadata metadata;
  bool with_metadata = false;
  std::string peft_sidecar;
};

std::uint64_t product(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::uint64_t{1}, std::multiplies<>());
}

Shape concat(Shape head, const Shape& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

Shape ones(std::size_t n) { return Shape(n, 1); }

// LyCORIS `factorization`: dim = m·n with m <= n, m as large as possible but <= factor (when > 0).
std::pair<std::uint64_t, std::uint64_t> factorize(std::uint64_t dim, int factor) {
  if (factor > 0 && dim % static_cast<std::uint64_t>(factor) == 0) {
    const auto f = static_cast<std::uint64_t>(factor);
    return {std::min(f, dim / f), std::max(f, dim / f)};
  }
  const std::uint64_t limit = factor > 0 ? static_cast<std::uint64_t>(factor) : dim;
  std::uint64_t best = 1;
  for (std::uint64_t m = 1; m * m <= dim && m <= limit; ++m) {
    if (dim % m == 0) best = m;
  }
  return {best, dim / best};
}

std::string python_float(double x) {
  std::string s = fmt::format("{}", x);
  if (s.find_first_of(".eninf") == std::string::npos) s += ".0";
  return s;
}

const std::array<DType, 3> kMixed = {DType::F16, DType::BF16, DType::F32};

// PEFT target_modules entry: the module's last name, with its parent when that name is an index
// ("to_out.0", "net.2").
std::string target_name(const std::string& path) {
  std::size_t cut = path.rfind('.');
  if (cut != std::string::npos && cut > 0 && std::isdigit(static_cast<unsigned char>(path[cut + 1]))) {
    cut = path.rfind('.', cut - 1);
  }
  return cut == std::string::npos ? path : path.substr(cut + 1);
}

class Planner {
 public:
  Planner(const GenSpec& spec, const Options& o) : spec_(spec), o_(o) {}

  Plan build() {
    const Arch arch = detail::build_arch(spec_.arch, o_.style, o_.conv, spec_.text_encoder);
    Plan plan;
    for (std::size_t copy = 1; copy <= spec_.copies; ++copy) {
      for (const ArchModule& full : arch.modules) {
        const ArchModule module = copy == 1 ? full : copied(full, copy);
        const auto naming = module_naming(o_, spec_, arch, module);
        if (!naming) continue;
        plan.modules.push_back(plan_module(shrunk(module), *naming, plan.modules.size()));
      }
    }
    if (plan.modules.size() < 2) invalid("no modules for this combination");
    if (spec_.zero_module) plan.modules[1].info.zero = true;
    if (spec_.passthrough) add_passthrough(plan);
    plan.metadata = metadata(arch, plan);
    if (spec_.peft_metadata == PeftMetadata::sidecar) plan.peft_sidecar = peft_config(arch, plan);
    plan.with_metadata = !plan.metadata.empty();
    return plan;
  }

 private:
  static ArchModule copied(ArchModule m, std::size_t copy) {
    m.path += "_copy" + std::to_string(copy);
    return m;
  }

  ArchModule shrunk(ArchModule m) const {
    m.out = std::max<std::uint64_t>(1, m.out / spec_.shrink);
    m.in = std::max<std::uint64_t>(1, m.in / spec_.shrink);
    return m;
  }

  static bool is_kxk(const ArchModule& m) { return !m.kernel.empty() && product(m.kernel) > 1; }

  std::size_t rank_for(const ArchModule& m, std::size_t index) const {
    if (is_kxk(m)) return spec_.conv_rank > 0 ? spec_.conv_rank : spec_.rank;
    return spec_.rank_cycle.empty() ? spec_.rank : spec_.rank_cycle[index % spec_.rank_cycle.size()];
  }

  double alpha_for(const ArchModule& m, std::size_t index) const {
    if (is_kxk(m)) {
      if (spec_.conv_alpha) return *spec_.conv_alpha;
      if (spec_.alpha) return *spec_.alpha;
      return static_cast<double>(rank_for(m, index)) / 2;
    }
    if (!spec_.alpha_cycle.empty()) return spec_.alpha_cycle[index % spec_.alpha_cycle.size()];
    return spec_.alpha ? *spec_.alpha : static_cast<double>(spec_.rank) / 2;
  }

  bool writes_alpha() const { return kohya_like(o_.family); }

  PlannedModule plan_module(const ArchModule& m, const Naming& naming, std::size_t index) const {
    PlannedModule pm;
    pm.shape = m;
    pm.algo = o_.algo;
    pm.tucker = o_.tucker && is_kxk(m);
    pm.dtype = spec_.mixed_dtypes ? kMixed[index % kMixed.size()] : spec_.dtype;
    pm.alpha = alpha_for(m, index);
    pm.seed = mix_seed(spec_.seed, index);
    const std::size_t r = rank_for(m, index);
    const auto ur = static_cast<std::uint64_t>(r);
    const std::uint64_t in_flat = m.in * product(m.kernel);
    GenModule& info = pm.info;
    info.stem = naming.stem;
    info.weight_shape = concat({m.out, m.in}, m.kernel);
    info.rank = r;
    info.dora = o_.dora;
    const bool peft_scaled = o_.family == Family::peft && spec_.peft_metadata != PeftMetadata::none;
    const double alpha_scale =
        pm.alpha / (peft_scaled && spec_.rslora ? std::sqrt(static_cast<double>(r)) : static_cast<double>(r));
    const std::size_t k = m.kernel.size();
    std::vector<std::pair<Role, Shape>> t;
    switch (o_.algo) {
      case Algo::lora:
        info.kind = pm.tucker ? "lora_tucker" : "lora";
        info.scale = writes_alpha() || peft_scaled ? alpha_scale : 1.0;
        if (pm.tucker) {
          t = {{Role::down, concat({ur, m.in}, ones(k))},
               {Role::mid, concat({ur, ur}, m.kernel)},
               {Role::up, concat({m.out, ur}, ones(k))}};
        } else {
          t = {{Role::down, concat({ur, m.in}, m.kernel)}, {Role::up, concat({m.out, ur}, ones(k))}};
        }
        break;
      case Algo::loha:
        info.kind = pm.tucker ? "loha_tucker" : "loha";
        info.scale = alpha_scale;
        if (pm.tucker) {
          t = {{Role::hada_t1, concat({ur, ur}, m.kernel)},
               {Role::hada_w1_a, {ur, m.out}},
               {Role::hada_w1_b, {ur, m.in}},
               {Role::hada_t2, concat({ur, ur}, m.kernel)},
               {Role::hada_w2_a, {ur, m.out}},
               {Role::hada_w2_b, {ur, m.in}}};
        } else {
          t = {{Role::hada_w1_a, {m.out, ur}},
               {Role::hada_w1_b, {ur, in_flat}},
               {Role::hada_w2_a, {m.out, ur}},
               {Role::hada_w2_b, {ur, in_flat}}};
        }
        break;
      case Algo::lokr:
        t = plan_lokr(pm, r);
        break;
    }
    if (o_.algo == Algo::lora && o_.dora) t.emplace_back(Role::dora, dora_shape(m));
    if (writes_alpha()) t.emplace_back(Role::alpha, Shape{});
    for (auto& [role, shape] : t) {
      const DType dtype = role == Role::alpha ? alpha_dtype() : pm.dtype;
      pm.tensors.push_back({role, {naming.stem + role_suffix(naming, role, spec_.peft_infix), dtype, shape}});
    }
    return pm;
  }

  std::vector<std::pair<Role, Shape>> plan_lokr(PlannedModule& pm, std::size_t r) const {
    const ArchModule& m = pm.shape;
    const auto ur = static_cast<std::uint64_t>(r);
    std::tie(pm.a, pm.b) = factorize(m.out, spec_.lokr_factor);
    std::tie(pm.c, pm.d) = factorize(m.in, spec_.lokr_factor);
    const auto small = [&](std::uint64_t x, std::uint64_t y) { return 2 * ur < std::max(x, y); };
    pm.w1_decomposed = spec_.lokr_mode == LokrMode::both_decomposed && small(pm.a, pm.c);
    pm.w2_decomposed = spec_.lokr_mode != LokrMode::full && small(pm.b, pm.d);
    pm.tucker = pm.tucker && pm.w2_decomposed;
    pm.info.kind = "lokr";
    pm.info.scale = pm.w1_decomposed || pm.w2_decomposed ? pm.alpha / static_cast<double>(r) : 1.0;
    std::vector<std::pair<Role, Shape>> t;
    if (pm.w1_decomposed) {
      t = {{Role::lokr_w1_a, {pm.a, ur}}, {Role::lokr_w1_b, {ur, pm.c}}};
    } else {
      t = {{Role::lokr_w1, {pm.a, pm.c}}};
    }
    if (!pm.w2_decomposed) {
      t.emplace_back(Role::lokr_w2, concat({pm.b, pm.d}, m.kernel));
    } else if (pm.tucker) {
      t.emplace_back(Role::lokr_t2, concat({ur, ur}, m.kernel));
      t.emplace_back(Role::lokr_w2_a, Shape{ur, pm.b});
      t.emplace_back(Role::lokr_w2_b, Shape{ur, pm.d});
    } else {
      t.emplace_back(Role::lokr_w2_a, Shape{pm.b, ur});
      t.emplace_back(Role::lokr_w2_b, Shape{ur, pm.d * product(m.kernel)});
    }
    return t;
  }

  Shape dora_shape(const ArchModule& m) const {
    const std::size_t k = m.kernel.size();
    if (o_.family == Family::peft) return k == 0 ? Shape{m.out} : concat({1, m.out}, ones(k));
    return concat({m.out, 1}, ones(k));
  }

  DType alpha_dtype() const {
    if (spec_.mixed_dtypes) return DType::F32;
    return spec_.alpha_dtype.value_or(spec_.dtype);
  }

  void add_passthrough(Plan& plan) const {
    const PlannedModule& m0 = plan.modules[0];
    const PlannedModule& m1 = plan.modules[1];
    const std::uint64_t width = std::max<std::uint64_t>(1, 768 / spec_.shrink);
    const std::vector<TensorSpec> specs = {
        {m0.info.stem + ".diff_b", spec_.dtype, {m0.shape.out}},
        {m1.info.stem + ".bias", spec_.dtype, {m1.shape.out}},
        {"bundle_emb.lk_token.string_to_param.*", DType::F32, {2, width}},
    };
    for (std::size_t i = 0; i < specs.size(); ++i) {
      plan.passthrough.push_back({specs[i], mix_seed(spec_.seed ^ 0x5A5A5A5AULL, i)});
    }
  }

  Metadata metadata(const Arch& arch, const Plan& plan) const {
    Metadata md;
    if (spec_.metadata) {
      if (kohya_like(o_.family)) {
        md = kohya_metadata(arch);
      } else {
        md["format"] = "pt";
      }
    }
    if (spec_.peft_metadata == PeftMetadata::sidecar) {
      md = {{"format", "pt"}};
    } else if (spec_.peft_metadata != PeftMetadata::none) {
      md["lora_adapter_metadata"] = peft_config(arch, plan);
    }
    return md;
  }

  Metadata kohya_metadata(const Arch& arch) const {
    const bool lycoris = o_.algo != Algo::lora || o_.tucker || o_.dora;
    const double alpha = spec_.alpha ? *spec_.alpha : static_cast<double>(spec_.rank) / 2;
    nlohmann::json args = nlohmann::json::object();
    if (lycoris) args["algo"] = o_.algo == Algo::loha ? "loha" : o_.algo == Algo::lokr ? "lokr" : "locon";
    if (o_.conv) {
      const std::size_t conv_rank = spec_.conv_rank > 0 ? spec_.conv_rank : spec_.rank;
      args["conv_dim"] = std::to_string(conv_rank);
      args["conv_alpha"] =
          python_float(spec_.conv_alpha.value_or(spec_.alpha.value_or(static_cast<double>(conv_rank) / 2)));
    }
    if (o_.tucker) args["use_tucker"] = "True";
    if (o_.dora) args["dora_wd"] = "True";
    Metadata md = {
        {"ss_network_module", lycoris ? "lycoris.kohya" : "networks.lora"},
        {"ss_network_dim", std::to_string(spec_.rank)},
        {"ss_network_alpha", python_float(alpha)},
        {"ss_training_comment", "lorakit-gen test file: ünïcödé 日本語のコメント ✓"},
        {"ss_base_model_version", arch.base_model_version},
        {"ss_output_name", "lorakit-gen-" + spec_.arch},
        {"ss_seed", std::to_string(spec_.seed)},
    };
    if (!args.empty()) md["ss_network_args"] = args.dump();
    return md;
  }

  // diffusers-style adapter config: r/lora_alpha plus patterns for modules that differ (conv ranks).
  std::string peft_config(const Arch& arch, const Plan& plan) const {
    const double alpha = spec_.alpha ? *spec_.alpha : static_cast<double>(spec_.rank) / 2;
    std::map<std::string, nlohmann::json> configs;  // component -> config
    for (const PlannedModule& pm : plan.modules) {
      const bool plain_names = spec_.peft_infix || spec_.peft_metadata == PeftMetadata::sidecar;
      const std::string component = plain_names ? "" : peft_component(arch, pm.shape.component);
      nlohmann::json& cfg = configs[component];
      if (cfg.is_null()) {
        cfg = {{"r", spec_.rank},
               {"lora_alpha", alpha},
               {"rank_pattern", nlohmann::json::object()},
               {"alpha_pattern", nlohmann::json::object()},
               {"target_modules", nlohmann::json::array()},
               {"use_rslora", spec_.rslora},
               {"use_dora", o_.dora},
               {"peft_type", "LORA"}};
      }
      if (pm.info.rank != spec_.rank) cfg["rank_pattern"][pm.shape.path] = pm.info.rank;
      if (pm.alpha != alpha) cfg["alpha_pattern"][pm.shape.path] = pm.alpha;
      const std::string leaf = target_name(pm.shape.path);
      auto& targets = cfg["target_modules"];
      if (std::find(targets.begin(), targets.end(), leaf) == targets.end()) targets.push_back(leaf);
    }
    if (spec_.peft_metadata == PeftMetadata::sidecar) return sidecar_config(configs.begin()->second);
    if (spec_.peft_metadata == PeftMetadata::plain) {
      if (configs.size() != 1)
        invalid("plain PEFT metadata needs a single component (use prefixed or no te)");
      return configs.begin()->second.dump();
    }
    nlohmann::json packed = nlohmann::json::object();
    for (const auto& [component, cfg] : configs) {
      for (const auto& [key, value] : cfg.items()) packed[component + "." + key] = value;
    }
    return packed.dump();
  }

  // save_pretrained's adapter_config.json: the whole LoraConfig, keys sorted, indented by 2.
  static std::string sidecar_config(nlohmann::json config) {
    const nlohmann::json others = {
        {"base_model_name_or_path", nullptr}, {"bias", "none"},           {"fan_in_fan_out", false},
        {"inference_mode", true},             {"init_lora_weights", true}, {"layers_to_transform", nullptr},
        {"lora_dropout", 0.05},               {"modules_to_save", nullptr}, {"task_type", nullptr},
        {"exclude_modules", nullptr},         {"auto_mapping", {{"base_model_class", "LoraKitGen"}}}};
    config.update(others);
    return config.dump(2);
  }

  const GenSpec& spec_;
  const Options& o_;
};

Plan make_plan(const GenSpec& spec) {
  const Options o = resolve_options(spec);
  return Planner(spec, o).build();
}

// ---- Values --------------------------------------------------------------------------------------

using Values = std::vector<float>;

// Per-module draw of a trained-like spectrum: σᵢ = σ₁·((1 − f)·exp(−i/τ) + f), τ log-uniform in
// [1, r], floor f in [1e-4, 3e-3]; entry sizes u0 (up, 1e-3..1e-2) and d0 (down, 5e-3..2e-2).
struct Spectrum {
  std::vector<double> rho;  // σᵢ/σ₁
  double up_entry = 0;
  double down_entry = 0;
  bool dead = false;
};

Spectrum draw_spectrum(Rng& rng, std::size_t r, double dead_fraction, double entry_boost) {
  Spectrum s;
  const double tau = rng.log_uniform(1.0, std::max(1.0 + 1e-9, static_cast<double>(r)));
  const double floor = rng.log_uniform(1e-4, 3e-3);
  s.up_entry = rng.log_uniform(1e-3, 1e-2) * entry_boost;
  s.down_entry = rng.log_uniform(5e-3, 2e-2) * entry_boost;
  s.dead = rng.uniform() < dead_fraction;
  for (std::size_t i = 0; i < r; ++i) {
    s.rho.push_back((1 - floor) * std::exp(-static_cast<double>(i) / tau) + floor);
  }
  return s;
}

// Gaussian rows × r (row-major), columns orthonormalised by modified Gram–Schmidt, run twice so the
// columns are orthonormal to rounding.
std::vector<double> orthonormal_columns(Rng& rng, std::size_t rows, std::size_t r) {
  std::vector<double> q(rows * r);
  for (auto& x : q) x = rng.normal();
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t j = 0; j < r; ++j) {
      for (std::size_t p = 0; p < j; ++p) {
        double dot = 0;
        for (std::size_t i = 0; i < rows; ++i) dot += q[i * r + p] * q[i * r + j];
        for (std::size_t i = 0; i < rows; ++i) q[i * r + j] -= dot * q[i * r + p];
      }
      double norm = 0;
      for (std::size_t i = 0; i < rows; ++i) norm += q[i * r + j] * q[i * r + j];
      norm = std::sqrt(norm);
      for (std::size_t i = 0; i < rows; ++i) q[i * r + j] /= norm;
    }
  }
  return q;
}

// Random matrix with given column norms: up (rows × r), row-major. Exact: orthonormal directions.
Values columns_with_norms(Rng& rng, std::size_t rows, const std::vector<double>& norms, bool exact) {
  const std::size_t r = norms.size();
  Values v(rows * r);
  if (exact) {
    if (rows < r) invalid("exact_spectrum needs rank <= every module dimension");
    const std::vector<double> q = orthonormal_columns(rng, rows, r);
    for (std::size_t i = 0; i < rows * r; ++i) v[i] = static_cast<float>(q[i] * norms[i % r]);
    return v;
  }
  rng.fill_normal(v.data(), v.size());
  std::vector<double> sq(r, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < r; ++j) sq[j] += static_cast<double>(v[i * r + j]) * v[i * r + j];
  }
  std::vector<float> f(r);
  for (std::size_t j = 0; j < r; ++j)
    f[j] = static_cast<float>(sq[j] > 0 ? norms[j] / std::sqrt(sq[j]) : 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < r; ++j) v[i * r + j] *= f[j];
  }
  return v;
}

// (r × cols) row-major with given row norms.
Values rows_with_norms(Rng& rng, std::size_t cols, const std::vector<double>& norms, bool exact) {
  const std::size_t r = norms.size();
  Values v(r * cols);
  if (exact) {
    const Values t = columns_with_norms(rng, cols, norms, true);  // cols × r
    for (std::size_t c = 0; c < cols; ++c) {
      for (std::size_t j = 0; j < r; ++j) v[j * cols + c] = t[c * r + j];
    }
    return v;
  }
  rng.fill_normal(v.data(), v.size());
  for (std::size_t j = 0; j < r; ++j) {
    float* row = &v[j * cols];
    double sq = 0;
    for (std::size_t c = 0; c < cols; ++c) sq += static_cast<double>(row[c]) * row[c];
    const auto f = static_cast<float>(sq > 0 ? norms[j] / std::sqrt(sq) : 0.0);
    for (std::size_t c = 0; c < cols; ++c) row[c] *= f;
  }
  return v;
}

// up ← up·H, down ← H·down with a random Householder reflection H = I − 2vvᵀ: keeps up·down and
// mixes the singular directions across the factor columns (trained factors are not diagonalised).
void reflect(Rng& rng, Values& up, Values& down, std::size_t r) {
  if (r < 2) return;
  std::vector<double> v(r);
  double norm = 0;
  for (auto& x : v) {
    x = rng.normal();
    norm += x * x;
  }
  if (norm == 0) return;
  for (auto& x : v) x /= std::sqrt(norm);
  const std::size_t rows = up.size() / r;
  for (std::size_t i = 0; i < rows; ++i) {
    float* row = &up[i * r];
    double dot = 0;
    for (std::size_t j = 0; j < r; ++j) dot += row[j] * v[j];
    for (std::size_t j = 0; j < r; ++j) row[j] = static_cast<float>(row[j] - 2 * dot * v[j]);
  }
  const std::size_t cols = down.size() / r;
  std::vector<double> w(cols, 0.0);
  for (std::size_t j = 0; j < r; ++j) {
    for (std::size_t c = 0; c < cols; ++c) w[c] += v[j] * down[j * cols + c];
  }
  for (std::size_t j = 0; j < r; ++j) {
    for (std::size_t c = 0; c < cols; ++c)
      down[j * cols + c] = static_cast<float>(down[j * cols + c] - 2 * v[j] * w[c]);
  }
}

struct LowRank {
  Values up;    // rows × r
  Values down;  // r × cols
};

constexpr double kDeadSigma = 1e-8;

// up·down with singular values σᵢ = σ₁ρᵢ (exactly so with `exact`): up columns √σᵢ·β, down rows √σᵢ/β,
// β chosen so entries come out near the spectrum's up/down entry sizes.
// σᵢ = σ₁ρᵢ with σ₁ = ‖up column‖·‖down row‖ at the drawn entry sizes (or kDeadSigma).
std::vector<double> requested_sigma(const Spectrum& s, std::size_t rows, std::size_t cols) {
  const double sigma1 = s.dead ? kDeadSigma
                               : s.up_entry * std::sqrt(static_cast<double>(rows)) * s.down_entry *
                                     std::sqrt(static_cast<double>(cols));
  std::vector<double> sigma;
  for (double rho : s.rho) sigma.push_back(sigma1 * rho);
  return sigma;
}

LowRank low_rank(Rng& rng, std::size_t rows, std::size_t cols, const Spectrum& s, bool exact) {
  const double up_norm = s.up_entry * std::sqrt(static_cast<double>(rows));
  const double down_norm = s.down_entry * std::sqrt(static_cast<double>(cols));
  const double beta = std::sqrt(up_norm / down_norm);
  LowRank lr;
  std::vector<double> a, b;
  for (double sigma : requested_sigma(s, rows, cols)) {
    a.push_back(std::sqrt(sigma) * beta);
    b.push_back(std::sqrt(sigma) / beta);
  }
  lr.up = columns_with_norms(rng, rows, a, exact);
  lr.down = rows_with_norms(rng, cols, b, exact);
  reflect(rng, lr.up, lr.down, s.rho.size());
  return lr;
}

Values scaled_normals(Rng& rng, std::size_t n, double scale) {
  Values v(n);
  rng.fill_normal(v.data(), n);
  for (auto& x : v) x = static_cast<float>(x * scale);
  return v;
}

Values transposed(const Values& m, std::size_t rows, std::size_t cols) {
  Values t(m.size());
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) t[j * rows + i] = m[i * cols + j];
  }
  return t;
}

// Tucker core (r, r, k…) with output rows damped by √ρ so the product's spectrum still decays.
Values tucker_core(Rng& rng, std::size_t r, std::uint64_t k, const Spectrum& s) {
  Values t = scaled_normals(rng, r * r * k, 1.0 / std::sqrt(static_cast<double>(r * k)));
  for (std::size_t i = 0; i < r; ++i) {
    for (std::size_t j = 0; j < r * k; ++j) t[i * r * k + j] *= static_cast<float>(std::sqrt(s.rho[i]));
  }
  return t;
}

class ModuleValues {
 public:
  ModuleValues(const PlannedModule& pm, const GenSpec& spec) : pm_(pm), spec_(spec), rng_(pm.seed) {}

  std::map<Role, Values> generate() {
    const std::size_t r = pm_.info.rank;
    const std::size_t out = pm_.shape.out;
    const std::size_t in = pm_.shape.in;
    const std::size_t k = product(pm_.shape.kernel);
    std::map<Role, Values> v;
    switch (pm_.algo) {
      case Algo::lora: {
        const Spectrum s = draw_spectrum(rng_, r, spec_.dead_fraction, 1.0);
        if (pm_.tucker) {
          Spectrum flat = s;
          flat.rho.assign(r, 1.0);
          LowRank lr = low_rank(rng_, out, in, flat, false);
          v[Role::up] = columns_scaled(std::move(lr.up), r, s.rho);
          v[Role::down] = std::move(lr.down);
          v[Role::mid] = tucker_core(rng_, r, k, s);
        } else {
          LowRank lr = low_rank(rng_, out, in * k, s, spec_.exact_spectrum);
          v[Role::up] = std::move(lr.up);
          v[Role::down] = std::move(lr.down);
        }
        if (pm_.info.zero) std::fill(v[Role::up].begin(), v[Role::up].end(), 0.0f);
        break;
      }
      case Algo::loha:
        loha(v, r, out, in, k);
        break;
      case Algo::lokr:
        lokr(v, r, k);
        break;
    }
    return v;
  }

  // Whether this module came out dead (drawn before any factor values).
  static bool is_dead(const PlannedModule& pm, const GenSpec& spec) {
    Rng rng(pm.seed);
    return draw_spectrum(rng, pm.info.rank, spec.dead_fraction, 1.0).dead;
  }

 private:
  static Values columns_scaled(Values m, std::size_t r, const std::vector<double>& rho) {
    for (std::size_t i = 0; i < m.size(); ++i) m[i] *= static_cast<float>(std::sqrt(rho[i % r]));
    return m;
  }

  // Hadamard term factors are ~10× larger than LoRA factors so that the product has LoRA-like entries.
  void loha(std::map<Role, Values>& v, std::size_t r, std::size_t out, std::size_t in, std::size_t k) {
    const Spectrum s = draw_spectrum(rng_, r, spec_.dead_fraction, 10.0);
    for (int term = 0; term < 2; ++term) {
      const Role wa = term == 0 ? Role::hada_w1_a : Role::hada_w2_a;
      const Role wb = term == 0 ? Role::hada_w1_b : Role::hada_w2_b;
      if (pm_.tucker) {
        Spectrum flat = s;
        flat.dead = false;
        flat.rho.assign(r, 1.0);
        LowRank lr = low_rank(rng_, out, in, flat, false);
        v[wa] = transposed(lr.up, out, r);
        v[wb] = std::move(lr.down);
        v[term == 0 ? Role::hada_t1 : Role::hada_t2] = tucker_core(rng_, r, k, s);
      } else {
        Spectrum term_spectrum = s;
        term_spectrum.dead = false;
        LowRank lr = low_rank(rng_, out, in * k, term_spectrum, false);
        v[wa] = std::move(lr.up);
        v[wb] = std::move(lr.down);
      }
    }
    if (s.dead) {  // ×1e-6 overall, split so that fp16 keeps the factors nonzero
      scale_all(v[Role::hada_w1_a], 1e-3);
      scale_all(v[Role::hada_w2_a], 1e-3);
    }
    if (pm_.info.zero) std::fill(v[Role::hada_w1_a].begin(), v[Role::hada_w1_a].end(), 0.0f);
  }

  void lokr(std::map<Role, Values>& v, std::size_t r, std::size_t k) {
    const Spectrum s = draw_spectrum(rng_, r, spec_.dead_fraction, 1.0);
    Spectrum live = s;
    live.dead = false;
    const double w1_entry = rng_.log_uniform(0.03, 0.3);
    if (pm_.w1_decomposed) {
      Spectrum s1 = live;
      s1.up_entry = s1.down_entry = std::sqrt(w1_entry / std::sqrt(static_cast<double>(r)));
      LowRank lr = low_rank(rng_, pm_.a, pm_.c, s1, false);
      v[Role::lokr_w1_a] = std::move(lr.up);
      v[Role::lokr_w1_b] = std::move(lr.down);
    } else {
      v[Role::lokr_w1] = scaled_normals(rng_, pm_.a * pm_.c, w1_entry);
    }
    if (!pm_.w2_decomposed) {
      v[Role::lokr_w2] = scaled_normals(rng_, pm_.b * pm_.d * k, live.up_entry);
    } else if (pm_.tucker) {
      Spectrum flat = live;
      flat.rho.assign(r, 1.0);
      LowRank lr = low_rank(rng_, pm_.b, pm_.d, flat, false);
      v[Role::lokr_w2_a] = transposed(lr.up, pm_.b, r);
      v[Role::lokr_w2_b] = std::move(lr.down);
      v[Role::lokr_t2] = tucker_core(rng_, r, k, s);
    } else {
      LowRank lr = low_rank(rng_, pm_.b, pm_.d * k, live, false);
      v[Role::lokr_w2_a] = std::move(lr.up);
      v[Role::lokr_w2_b] = std::move(lr.down);
    }
    const Role w1 = pm_.w1_decomposed ? Role::lokr_w1_a : Role::lokr_w1;
    if (s.dead) {  // ×1e-6 overall, split so that fp16 keeps the factors nonzero
      scale_all(v[w1], 1e-3);
      scale_all(v[pm_.w2_decomposed ? Role::lokr_w2_a : Role::lokr_w2], 1e-3);
    }
    if (pm_.info.zero) std::fill(v[w1].begin(), v[w1].end(), 0.0f);
  }

  static void scale_all(Values& v, double f) {
    for (auto& x : v) x = static_cast<float>(x * f);
  }

  const PlannedModule& pm_;
  const GenSpec& spec_;
  Rng rng_;
};

// Positive magnitudes near 1 (base-weight row norms), from their own stream.
Values dora_values(const PlannedModule& pm, std::uint64_t n) {
  Rng rng(mix_seed(pm.seed, 0xD0DA));
  Values v(n);
  for (auto& x : v) x = std::abs(1.0f + 0.1f * rng.normal());
  return v;
}

void finish_manifest(Plan& plan, const GenSpec& spec) {
  for (PlannedModule& pm : plan.modules) {
    pm.info.dead = !pm.info.zero && ModuleValues::is_dead(pm, spec);
    if (pm.algo == Algo::lora && !pm.tucker) {
      // The requested spectrum is drawn first: regenerate only the draw, not the factors.
      Rng rng(pm.seed);
      const Spectrum s = draw_spectrum(rng, pm.info.rank, spec.dead_fraction, 1.0);
      const std::size_t cols = pm.shape.in * product(pm.shape.kernel);
      if (!pm.info.zero) pm.info.sigma = requested_sigma(s, pm.shape.out, cols);
    }
  }
}

GenPlan public_plan(const Plan& plan) {
  GenPlan out;
  for (const PlannedModule& pm : plan.modules) {
    for (const PlannedTensor& t : pm.tensors) out.tensors.push_back(t.spec);
    out.manifest.push_back(pm.info);
  }
  for (const PassTensor& p : plan.passthrough) out.tensors.push_back(p.spec);
  out.metadata = plan.metadata;
  out.peft_sidecar = plan.peft_sidecar;
  return out;
}

Plan full_plan(const GenSpec& spec) {
  Plan plan = make_plan(spec);
  finish_manifest(plan, spec);
  return plan;
}

}  // namespace

// ---- Public API ----------------------------------------------------------------------------------

GenPlan plan_lora(const GenSpec& spec) { return public_plan(full_plan(spec)); }

std::uint64_t lora_file_size(const GenSpec& spec) {
  const Plan plan = make_plan(spec);
  return plan_layout(public_plan(plan).tensors, plan.metadata, plan.with_metadata).file_size();
}

GenResult write_lora(const GenSpec& spec, const std::filesystem::path& path, bool overwrite) {
  const Plan plan = full_plan(spec);
  GenPlan pub = public_plan(plan);
  const Layout layout = plan_layout(pub.tensors, plan.metadata, plan.with_metadata);

  struct Owner {
    std::size_t module;  // plan.modules index, or SIZE_MAX for pass-through
    std::size_t slot;
  };
  constexpr std::size_t kPass = std::numeric_limits<std::size_t>::max();
  std::unordered_map<std::string_view, Owner> owners;
  for (std::size_t m = 0; m < plan.modules.size(); ++m) {
    for (std::size_t s = 0; s < plan.modules[m].tensors.size(); ++s) {
      owners[plan.modules[m].tensors[s].spec.name] = {m, s};
    }
  }
  for (std::size_t p = 0; p < plan.passthrough.size(); ++p)
    owners[plan.passthrough[p].spec.name] = {kPass, p};

  AtomicFile file(path, overwrite);
  file.write(layout.prefix);
  std::size_t cached = kPass;
  std::map<Role, Values> factors;
  std::vector<std::byte> bytes;
  for (const TensorInfo& info : layout.tensors) {
    const Owner owner = owners.at(info.name);
    Values values;
    if (owner.module == kPass) {
      Rng rng(plan.passthrough[owner.slot].seed);
      values = scaled_normals(rng, info.numel(), 0.01);
    } else {
      const PlannedModule& pm = plan.modules[owner.module];
      const Role role = pm.tensors[owner.slot].role;
      if (role == Role::alpha) {
        values = {static_cast<float>(pm.alpha)};
      } else if (role == Role::dora) {
        values = dora_values(pm, info.numel());
      } else {
        if (cached != owner.module) {  // tensors of one module are adjacent unless dtypes split them
          factors = ModuleValues(pm, spec).generate();
          cached = owner.module;
        }
        values = std::move(factors.at(role));
      }
    }
    if (values.size() != info.numel()) {
      throw Error(ErrorCode::internal, path.string(), info.name, "generator produced a wrong element count");
    }
    bytes.resize(info.nbytes());
    encode(info.dtype, values, bytes);
    file.write(bytes);
  }
  file.commit();
  if (!plan.peft_sidecar.empty()) {
    AtomicFile sidecar(path.parent_path() / "adapter_config.json", overwrite);
    sidecar.write(plan.peft_sidecar);
    sidecar.commit();
  }
  GenResult result;
  result.path = path;
  result.modules = plan.modules.size();
  result.bytes = layout.file_size();
  result.manifest = std::move(pub.manifest);
  return result;
}

std::vector<std::string> arch_names() { return detail::all_arch_names(); }

std::vector<std::string> family_names() {
  std::vector<std::string> names;
  for (const auto& [name, family] : families()) names.push_back(name);
  return names;
}

std::vector<std::string> kind_names() { return kinds(); }

DType parse_float_dtype(const std::string& name) {
  static const std::map<std::string, DType> table = {
      {"fp16", DType::F16},  {"f16", DType::F16},   {"F16", DType::F16},       {"float16", DType::F16},
      {"bf16", DType::BF16}, {"BF16", DType::BF16}, {"bfloat16", DType::BF16}, {"fp32", DType::F32},
      {"f32", DType::F32},   {"F32", DType::F32},   {"float32", DType::F32},
  };
  const auto it = table.find(name);
  if (it == table.end()) invalid("unknown dtype '" + name + "' (fp16, bf16, fp32)");
  return it->second;
}

void write_tensors(const std::vector<RawTensor>& tensors, const Metadata& metadata,
                   const std::filesystem::path& path, bool overwrite, bool with_metadata) {
  std::vector<TensorSpec> specs;
  std::unordered_map<std::string_view, const RawTensor*> by_name;
  for (const RawTensor& t : tensors) {
    specs.push_back({t.name, t.dtype, t.shape});
    by_name[t.name] = &t;
  }
  const Layout layout = plan_layout(specs, metadata, with_metadata);
  AtomicFile file(path, overwrite);
  file.write(layout.prefix);
  std::vector<std::byte> bytes;
  for (const TensorInfo& info : layout.tensors) {
    const RawTensor& t = *by_name.at(info.name);
    if (!t.bytes.empty()) {
      if (t.bytes.size() != info.nbytes())
        throw Error(ErrorCode::invalid_argument, path.string(), t.name, "byte count");
      file.write(t.bytes);
      continue;
    }
    if (t.values.size() != info.numel()) {
      throw Error(ErrorCode::invalid_argument, path.string(), t.name, "value count does not match the shape");
    }
    bytes.resize(info.nbytes());
    encode(info.dtype, t.values, bytes);
    file.write(bytes);
  }
  file.commit();
}

}  // namespace lorakit::testsupport
