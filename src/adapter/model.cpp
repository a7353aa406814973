// Grouping a header's tensors into adapter modules: kinds, completeness, shapes, output names and
// the scale loaders compute (FORMATS.md §2–§3).
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "adapter/conv_kernels.hpp"
#include "adapter/keys.hpp"
#include "adapter/peft.hpp"
#include "lorakit/adapter.hpp"
#include "lorakit/dtype.hpp"
#include "lorakit/error.hpp"

namespace lorakit {

std::string_view module_kind_name(ModuleKind kind) {
  switch (kind) {
    case ModuleKind::lora: return "lora";
    case ModuleKind::lora_tucker: return "lora_tucker";
    case ModuleKind::loha: return "loha";
    case ModuleKind::loha_tucker: return "loha_tucker";
    case ModuleKind::lokr: return "lokr";
  }
  return "unknown";
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::down: return "down";
    case Role::up: return "up";
    case Role::mid: return "mid";
    case Role::alpha: return "alpha";
    case Role::scale: return "scale";
    case Role::dora: return "dora";
    case Role::hada_w1_a: return "hada_w1_a";
    case Role::hada_w1_b: return "hada_w1_b";
    case Role::hada_w2_a: return "hada_w2_a";
    case Role::hada_w2_b: return "hada_w2_b";
    case Role::hada_t1: return "hada_t1";
    case Role::hada_t2: return "hada_t2";
    case Role::lokr_w1: return "lokr_w1";
    case Role::lokr_w1_a: return "lokr_w1_a";
    case Role::lokr_w1_b: return "lokr_w1_b";
    case Role::lokr_w2: return "lokr_w2";
    case Role::lokr_w2_a: return "lokr_w2_a";
    case Role::lokr_w2_b: return "lokr_w2_b";
    case Role::lokr_t2: return "lokr_t2";
  }
  return "unknown";
}

const TensorInfo* Module::tensor(Role role) const {
  const auto found = tensors.find(role);
  return found == tensors.end() ? nullptr : found->second;
}

std::uint64_t Module::in_flat() const {
  std::uint64_t product = 1;
  for (std::size_t i = 1; i < weight_shape.size(); ++i) product *= weight_shape[i];
  return product;
}

namespace {

using adapter_detail::Grammar;

using Shape = std::vector<std::uint64_t>;

bool is_factor(Role role) { return role != Role::alpha && role != Role::scale && role != Role::dora; }

enum class FactorClass { lora, loha, lokr };

FactorClass class_of(Role role) {
  switch (role) {
    case Role::hada_w1_a:
    case Role::hada_w1_b:
    case Role::hada_w2_a:
    case Role::hada_w2_b:
    case Role::hada_t1:
    case Role::hada_t2:
      return FactorClass::loha;
    case Role::lokr_w1:
    case Role::lokr_w1_a:
    case Role::lokr_w1_b:
    case Role::lokr_w2:
    case Role::lokr_w2_a:
    case Role::lokr_w2_b:
    case Role::lokr_t2:
      return FactorClass::lokr;
    default:
      return FactorClass::lora;
  }
}

// The tensors named STEM + suffix (or STEM + infix) of one module, as read from the header.
struct Group {
  std::string_view stem;
  std::string_view adapter_name;
  Grammar grammar = Grammar::any;
  std::map<Role, const TensorInfo*> tensors;

  bool has_factor() const {
    return std::any_of(tensors.begin(), tensors.end(), [](const auto& entry) { return is_factor(entry.first); });
  }
};

std::string shape_text(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

[[noreturn]] void fail(ErrorCode code, std::string_view file, const TensorInfo& tensor, std::string_view what) {
  throw Error(code, file, tensor.name, what);
}

void add_tensor(Group& group, Role role, const TensorInfo& tensor, std::string_view file) {
  const auto [existing, inserted] = group.tensors.emplace(role, &tensor);
  if (!inserted) {
    fail(ErrorCode::adapter_incomplete, file, tensor,
         fmt::format("is a second {} tensor of module '{}' (first: '{}')", role_name(role), group.stem,
                     existing->second->name));
  }
}

// Validation and derived fields of one module; `file` names the file in errors.
class ModuleBuilder {
 public:
  ModuleBuilder(const Group& group, std::string_view file, const ScalarReader& read_scalar)
      : file_(file), read_scalar_(read_scalar) {
    module_.stem = std::string(group.stem);
    module_.adapter_name = std::string(group.adapter_name);
    module_.family = adapter_detail::family_of(group.grammar, group.stem);
    module_.tensors = group.tensors;
  }

  Module build() {
    module_.kind = kind();
    check_dtypes();
    check_nonzero_dims();
    switch (module_.kind) {
      case ModuleKind::lora: lora(); break;
      case ModuleKind::lora_tucker: lora_tucker(); break;
      case ModuleKind::loha: loha(); break;
      case ModuleKind::loha_tucker: loha_tucker(); break;
      case ModuleKind::lokr: lokr(); break;
    }
    check_weight_size();
    names();
    scale();
    return std::move(module_);
  }

 private:
  const TensorInfo& any_tensor() const { return *module_.tensors.begin()->second; }
  const TensorInfo& at(Role role) const { return *module_.tensors.at(role); }
  const Shape& shape(Role role) const { return at(role).shape; }
  bool has(Role role) const { return module_.tensors.count(role) != 0; }

  [[noreturn]] void incomplete(std::string_view what) const {
    fail(ErrorCode::adapter_incomplete, file_, any_tensor(), fmt::format("module '{}' {}", module_.stem, what));
  }

  void require(Role role, std::string_view kind_label) const {
    if (!has(role)) incomplete(fmt::format("is a {} without its {} tensor", kind_label, role_name(role)));
  }

  ModuleKind kind() const {
    std::map<FactorClass, const TensorInfo*> classes;
    for (const auto& [role, tensor] : module_.tensors) {
      if (is_factor(role)) classes.emplace(class_of(role), tensor);
    }
    if (classes.size() > 1) {
      fail(ErrorCode::adapter_incomplete, file_, *std::next(classes.begin())->second,
           fmt::format("module '{}' mixes LoRA, LoHa and LoKr factors (also has '{}')", module_.stem,
                       classes.begin()->second->name));
    }
    switch (classes.begin()->first) {
      case FactorClass::lora:
        require(Role::down, "LoRA");
        require(Role::up, "LoRA");
        return has(Role::mid) ? ModuleKind::lora_tucker : ModuleKind::lora;
      case FactorClass::loha:
        for (Role role : {Role::hada_w1_a, Role::hada_w1_b, Role::hada_w2_a, Role::hada_w2_b}) require(role, "LoHa");
        if (has(Role::hada_t1) || has(Role::hada_t2)) {
          require(Role::hada_t1, "Tucker LoHa");
          require(Role::hada_t2, "Tucker LoHa");
          return ModuleKind::loha_tucker;
        }
        return ModuleKind::loha;
      case FactorClass::lokr:
        require_kron_factor(Role::lokr_w1, Role::lokr_w1_a, Role::lokr_w1_b);
        require_kron_factor(Role::lokr_w2, Role::lokr_w2_a, Role::lokr_w2_b);
        if (has(Role::lokr_t2) && has(Role::lokr_w2)) incomplete("has lokr_t2 with a full lokr_w2");
        return ModuleKind::lokr;
    }
    return ModuleKind::lora;
  }

  // A Kronecker factor is stored full or as a product a·b, never both.
  void require_kron_factor(Role full, Role a, Role b) const {
    if (has(full)) {
      if (has(a) || has(b)) {
        incomplete(fmt::format("has both {} and {}", role_name(full), role_name(has(a) ? a : b)));
      }
      return;
    }
    if (!has(a) && !has(b)) incomplete(fmt::format("is a LoKr without {} (or {} and {})", role_name(full),
                                                    role_name(a), role_name(b)));
    require(a, "LoKr");
    require(b, "LoKr");
  }

  void check_dtypes() const {
    for (const auto& [role, tensor] : module_.tensors) {
      if (role != Role::alpha && role != Role::scale && !is_float(tensor->dtype)) {
        fail(ErrorCode::adapter_dtype_unsupported, file_, *tensor,
             fmt::format("dtype {} is not a float type (F16, BF16, F32, F64)", dtype_name(tensor->dtype)));
      }
    }
  }

  void check_nonzero_dims() const {
    for (const auto& [role, tensor] : module_.tensors) {
      const bool empty = std::find(tensor->shape.begin(), tensor->shape.end(), 0) != tensor->shape.end();
      if (is_factor(role) && empty) {
        fail(ErrorCode::adapter_shape_mismatch, file_, *tensor,
             fmt::format("factor has an empty dimension: {}", shape_text(tensor->shape)));
      }
    }
  }

  void ndim(Role role, std::size_t low, std::size_t high) const {
    const std::size_t n = shape(role).size();
    if (n < low || n > high) {
      const std::string expected = low == high ? fmt::format("{}", low) : fmt::format("{} to {}", low, high);
      fail(ErrorCode::adapter_shape_mismatch, file_, at(role),
           fmt::format("{} of a {} module must have {} dimensions, has shape {}", role_name(role),
                       module_kind_name(module_.kind), expected, shape_text(shape(role))));
    }
  }

  // shape(a)[i] == shape(b)[j], or the factors do not compose.
  void same(Role a, std::size_t i, Role b, std::size_t j) const {
    if (shape(a)[i] != shape(b)[j]) {
      fail(ErrorCode::adapter_shape_mismatch, file_, at(a),
           fmt::format("shape {} does not compose with '{}' {}: dimension {} is {}, expected {}",
                       shape_text(shape(a)), at(b).name, shape_text(shape(b)), i, shape(a)[i], shape(b)[j]));
    }
  }

  // 1×1 kernel axes from dimension 2 on (conv up / Tucker down and up).
  void unit_kernel(Role role) const {
    const Shape& s = shape(role);
    if (std::any_of(s.begin() + 2, s.end(), [](std::uint64_t d) { return d != 1; })) {
      fail(ErrorCode::adapter_shape_mismatch, file_, at(role),
           fmt::format("{} must have a 1×1 kernel, has shape {}", role_name(role), shape_text(s)));
    }
  }

  static Shape kernel_of(const Shape& s) { return Shape(s.begin() + 2, s.end()); }

  void set_weight(std::uint64_t out, std::uint64_t in, const Shape& kernel) {
    module_.weight_shape = {out, in};
    module_.weight_shape.insert(module_.weight_shape.end(), kernel.begin(), kernel.end());
  }

  void lora() {
    ndim(Role::down, 2, 5);
    ndim(Role::up, shape(Role::down).size(), shape(Role::down).size());
    unit_kernel(Role::up);
    same(Role::up, 1, Role::down, 0);
    set_weight(shape(Role::up)[0], shape(Role::down)[1], kernel_of(shape(Role::down)));
    module_.rank = shape(Role::down)[0];
  }

  void lora_tucker() {
    ndim(Role::mid, 3, 5);
    const std::size_t n = shape(Role::mid).size();
    ndim(Role::down, n, n);
    ndim(Role::up, n, n);
    unit_kernel(Role::down);
    unit_kernel(Role::up);
    same(Role::mid, 0, Role::up, 1);
    same(Role::mid, 1, Role::down, 0);
    set_weight(shape(Role::up)[0], shape(Role::down)[1], kernel_of(shape(Role::mid)));
    module_.rank = shape(Role::down)[0];
  }

  void loha() {
    for (Role role : {Role::hada_w1_a, Role::hada_w1_b, Role::hada_w2_a, Role::hada_w2_b}) ndim(role, 2, 2);
    same(Role::hada_w1_b, 0, Role::hada_w1_a, 1);
    same(Role::hada_w2_b, 0, Role::hada_w2_a, 1);
    same(Role::hada_w2_a, 0, Role::hada_w1_a, 0);
    same(Role::hada_w2_b, 1, Role::hada_w1_b, 1);
    set_weight(shape(Role::hada_w1_a)[0], shape(Role::hada_w1_b)[1], {});
    module_.rank = shape(Role::hada_w1_b)[0];
  }

  // Tucker LoHa: w_a (r, out), w_b (r, in), t (r, r, kh, kw).
  void loha_tucker() {
    for (Role role : {Role::hada_w1_a, Role::hada_w1_b, Role::hada_w2_a, Role::hada_w2_b}) ndim(role, 2, 2);
    ndim(Role::hada_t1, 3, 5);
    ndim(Role::hada_t2, shape(Role::hada_t1).size(), shape(Role::hada_t1).size());
    same(Role::hada_t1, 0, Role::hada_w1_a, 0);
    same(Role::hada_t1, 1, Role::hada_w1_b, 0);
    same(Role::hada_t2, 0, Role::hada_w2_a, 0);
    same(Role::hada_t2, 1, Role::hada_w2_b, 0);
    same(Role::hada_w2_a, 1, Role::hada_w1_a, 1);
    same(Role::hada_w2_b, 1, Role::hada_w1_b, 1);
    for (std::size_t axis = 2; axis < shape(Role::hada_t1).size(); ++axis) same(Role::hada_t2, axis, Role::hada_t1, axis);
    set_weight(shape(Role::hada_w1_a)[1], shape(Role::hada_w1_b)[1], kernel_of(shape(Role::hada_t1)));
    module_.rank = shape(Role::hada_w1_b)[0];
  }

  void lokr() {
    // w1 (a, c): full or w1_a (a, r) · w1_b (r, c).
    std::uint64_t a = 0, c = 0;
    if (has(Role::lokr_w1)) {
      ndim(Role::lokr_w1, 2, 2);
      a = shape(Role::lokr_w1)[0];
      c = shape(Role::lokr_w1)[1];
    } else {
      ndim(Role::lokr_w1_a, 2, 2);
      ndim(Role::lokr_w1_b, 2, 2);
      same(Role::lokr_w1_b, 0, Role::lokr_w1_a, 1);
      a = shape(Role::lokr_w1_a)[0];
      c = shape(Role::lokr_w1_b)[1];
    }
    // w2 (b, d[, kh, kw]): full, w2_a (b, r) · w2_b (r, d·kh·kw), or Tucker t2 (r, r, kh, kw),
    // w2_a (r, b), w2_b (r, d).
    std::uint64_t b = 0, d = 0;
    Shape kernel;
    if (has(Role::lokr_w2)) {
      ndim(Role::lokr_w2, 2, 5);
      b = shape(Role::lokr_w2)[0];
      d = shape(Role::lokr_w2)[1];
      kernel = kernel_of(shape(Role::lokr_w2));
    } else {
      ndim(Role::lokr_w2_a, 2, 2);
      ndim(Role::lokr_w2_b, 2, 2);
      if (has(Role::lokr_t2)) {
        ndim(Role::lokr_t2, 3, 5);
        same(Role::lokr_t2, 0, Role::lokr_w2_a, 0);
        same(Role::lokr_t2, 1, Role::lokr_w2_b, 0);
        b = shape(Role::lokr_w2_a)[1];
        kernel = kernel_of(shape(Role::lokr_t2));
      } else {
        same(Role::lokr_w2_b, 0, Role::lokr_w2_a, 1);
        b = shape(Role::lokr_w2_a)[0];
      }
      d = shape(Role::lokr_w2_b)[1];
    }
    set_weight(checked_product(a, b), checked_product(c, d), kernel);
    if (!has(Role::lokr_w2)) {
      module_.rank = shape(Role::lokr_w2_b)[0];
    } else if (!has(Role::lokr_w1)) {
      module_.rank = shape(Role::lokr_w1_b)[0];
    } else {
      std::uint64_t d_flat = d;
      for (std::uint64_t k : kernel) d_flat = checked_product(d_flat, k);
      module_.rank = std::min(a, c) * std::min(b, d_flat);
    }
  }

  std::uint64_t checked_product(std::uint64_t x, std::uint64_t y) const {
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(x, y, &product)) {
      fail(ErrorCode::adapter_shape_mismatch, file_, any_tensor(),
           fmt::format("module '{}' patches a weight too large to address", module_.stem));
    }
    return product;
  }

  void check_weight_size() const {
    std::uint64_t size = 1;
    for (std::uint64_t d : module_.weight_shape) size = checked_product(size, d);
  }

  void names() {
    using namespace adapter_detail;
    if (module_.kind == ModuleKind::lora || module_.kind == ModuleKind::lora_tucker) {
      module_.down_name = at(Role::down).name;
      module_.up_name = at(Role::up).name;
    } else {
      module_.down_name = module_.stem + std::string(kKohyaDownSuffix);
      module_.up_name = module_.stem + std::string(kKohyaUpSuffix);
    }
    if (has(Role::alpha)) {
      module_.alpha_name = at(Role::alpha).name;
    } else if (family_carries_alpha(module_.family)) {
      module_.alpha_name = module_.stem + std::string(kAlphaSuffix);
    }
  }

  double scalar(Role role) const {
    const TensorInfo& tensor = at(role);
    if (!is_float(tensor.dtype)) {
      fail(ErrorCode::adapter_dtype_unsupported, file_, tensor,
           fmt::format("{} has dtype {}, not a float type", role_name(role), dtype_name(tensor.dtype)));
    }
    if (tensor.numel() != 1) {
      fail(ErrorCode::adapter_invalid_alpha, file_, tensor,
           fmt::format("{} must hold one value, has shape {}", role_name(role), shape_text(tensor.shape)));
    }
    const double value = read_scalar_(tensor);
    if (!std::isfinite(value)) {
      fail(ErrorCode::adapter_invalid_alpha, file_, tensor, fmt::format("{} is not finite ({})", role_name(role), value));
    }
    return value;
  }

  // A LoKr with both Kronecker factors full has no rank to divide alpha by: loaders use scale 1.
  bool scale_is_unity() const {
    return module_.kind == ModuleKind::lokr && has(Role::lokr_w1) && has(Role::lokr_w2);
  }

  void scale() {
    if (has(Role::alpha)) module_.alpha = scalar(Role::alpha);
    if (has(Role::scale)) {
      // stable-diffusion.cpp: the stored scale overrides alpha / r.
      module_.alpha_source = AlphaSource::scale_tensor;
      module_.scale = scalar(Role::scale);
    } else if (module_.alpha) {
      // alpha = 0 gives scale 0 as ComfyUI and stable-diffusion.cpp compute it; it is kept as it is.
      module_.alpha_source = AlphaSource::tensor;
      module_.scale = scale_is_unity() ? 1.0 : *module_.alpha / static_cast<double>(module_.rank);
    }
  }

  Module module_;
  std::string_view file_;
  const ScalarReader& read_scalar_;
};

using GroupMap = std::map<std::pair<std::string_view, std::string_view>, Group>;

// alpha, scale and dora_scale belong to the module with factors under the same stem: the one without
// an adapter infix, else the only one (ComfyUI reads STEM.alpha beside STEM.lora_A.default.weight).
Group* owner_of(GroupMap& groups, std::string_view stem) {
  std::vector<Group*> candidates;
  for (auto it = groups.lower_bound({stem, std::string_view()}); it != groups.end() && it->first.first == stem; ++it) {
    if (it->second.has_factor()) candidates.push_back(&it->second);
  }
  if (candidates.empty()) return nullptr;
  if (candidates.front()->adapter_name.empty() || candidates.size() == 1) return candidates.front();
  return nullptr;
}

// diffusers' config applies to the PEFT modules that carry neither an alpha nor a scale tensor.
std::optional<PeftConfig> apply_peft_metadata(const Header& header, std::vector<Module>& modules,
                                              std::string_view file) {
  const auto text = header.metadata.find(std::string(adapter_detail::kPeftMetadataKey));
  if (text == header.metadata.end()) return std::nullopt;
  PeftConfig config = adapter_detail::apply_peft_config(text->second, adapter_detail::metadata_source(file), modules);
  config.metadata_key = text->first;
  return config;
}

std::optional<PeftConfig> apply_peft_sidecar(const PeftSidecar* sidecar, std::vector<Module>& modules) {
  if (sidecar == nullptr) return std::nullopt;
  const std::string config_file = sidecar->path.string();
  PeftConfig config = adapter_detail::apply_peft_config(sidecar->json, adapter_detail::sidecar_source(config_file),
                                                        modules);
  config.sidecar = sidecar->path;
  return config;
}

}  // namespace

AdapterModel build_adapter_model(const Header& header, std::string_view file, const ScalarReader& read_scalar,
                                 const PeftSidecar* sidecar) {
  adapter_detail::reject_unsupported_format(header, file);
  GroupMap groups;
  std::vector<std::pair<adapter_detail::ParsedKey, const TensorInfo*>> attachments;
  for (const TensorInfo& tensor : header.tensors) {
    const std::optional<adapter_detail::ParsedKey> key = adapter_detail::parse_key(tensor.name);
    if (!key) continue;
    if (key->grammar == Grammar::any) {
      attachments.emplace_back(*key, &tensor);
      continue;
    }
    Group& group = groups[{key->stem, key->adapter_name}];
    if (group.tensors.empty()) {
      group.stem = key->stem;
      group.adapter_name = key->adapter_name;
      group.grammar = key->grammar;
    } else if (group.grammar != key->grammar) {
      fail(ErrorCode::adapter_incomplete, file, tensor,
           fmt::format("mixes naming conventions with '{}' in module '{}'", group.tensors.begin()->second->name,
                       key->stem));
    }
    add_tensor(group, key->role, tensor, file);
  }
  for (const auto& [key, tensor] : attachments) {
    if (Group* owner = owner_of(groups, key.stem)) add_tensor(*owner, key.role, *tensor, file);
  }

  AdapterModel model;
  std::set<const TensorInfo*> claimed;
  for (const auto& [key, group] : groups) {
    if (!group.has_factor()) continue;
    model.modules.push_back(ModuleBuilder(group, file, read_scalar).build());
    for (const auto& [role, tensor] : group.tensors) claimed.insert(tensor);
  }
  std::sort(model.modules.begin(), model.modules.end(), [](const Module& a, const Module& b) {
    return std::tie(a.stem, a.adapter_name) < std::tie(b.stem, b.adapter_name);
  });
  for (const TensorInfo& tensor : header.tensors) {
    if (claimed.count(&tensor) == 0) model.passthrough.push_back(&tensor);
  }
  model.peft = apply_peft_metadata(header, model.modules, file);
  model.peft_sidecar = apply_peft_sidecar(sidecar, model.modules);
  adapter_detail::restore_flattened_kernels(model);
  return model;
}

AdapterModel read_adapter_model(const Reader& reader, const PeftSidecar* sidecar) {
  return build_adapter_model(
      reader.header(), reader.path().string(),
      [&](const TensorInfo& info) {
        const std::vector<double> values = reader.read_doubles(info);
        if (values.size() != 1) {
          throw Error(ErrorCode::adapter_invalid_alpha, "", info.name, "a scalar must hold one value");
        }
        return values[0];
      },
      sidecar);
}

}  // namespace lorakit
