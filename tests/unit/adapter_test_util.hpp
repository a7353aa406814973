#pragma once
// Hand-built headers for the adapter tests: names and shapes as trainers write them, no file needed.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "lorakit/adapter.hpp"
#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit::test {

inline constexpr std::string_view kTestFile = "test.safetensors";

struct Spec {
  std::string name;
  std::vector<std::uint64_t> shape;
  DType dtype = DType::F16;
};

// Tensors laid out back to back, as a reader would report them.
inline Header make_header(const std::vector<Spec>& specs, const Metadata& metadata = {}) {
  Header header;
  std::uint64_t offset = 0;
  for (const Spec& spec : specs) {
    std::uint64_t numel = 1;
    for (std::uint64_t d : spec.shape) numel *= d;
    const std::uint64_t bytes = numel * dtype_bits(spec.dtype) / 8;
    header.tensors.push_back(TensorInfo{spec.name, spec.dtype, spec.shape, offset, offset + bytes});
    offset += bytes;
  }
  header.metadata = metadata;
  header.has_metadata = !metadata.empty();
  return header;
}

// Alpha / scale values by tensor name.
inline AdapterModel build(const Header& header, const std::map<std::string, double>& scalars = {}) {
  return build_adapter_model(header, kTestFile, [scalars](const TensorInfo& tensor) { return scalars.at(tensor.name); });
}

inline const Module* find_module(const AdapterModel& model, std::string_view stem) {
  for (const Module& module : model.modules) {
    if (module.stem == stem) return &module;
  }
  return nullptr;
}

// Runs `action`, expecting lorakit::Error with `code` and a message containing every fragment.
inline void expect_error(const std::function<void()>& action, ErrorCode code,
                         std::initializer_list<std::string_view> fragments) {
  try {
    action();
    ADD_FAILURE() << "expected Error(" << error_code_name(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(error_code_name(e.code()), error_code_name(code)) << e.what();
    for (std::string_view fragment : fragments) {
      EXPECT_NE(std::string_view(e.what()).find(fragment), std::string_view::npos)
          << "message '" << e.what() << "' lacks '" << fragment << "'";
    }
  }
}

}  // namespace lorakit::test
