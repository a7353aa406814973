// plan_layout against hand-derived bytes of the reference serialization, and round trips through
// parse_header.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

std::vector<std::string> names_of(const std::vector<TensorInfo>& tensors) {
  std::vector<std::string> names;
  for (const TensorInfo& tensor : tensors) {
    names.push_back(tensor.name);
  }
  return names;
}

void expect_error(ErrorCode code, const std::function<void()>& call) {
  try {
    call();
    ADD_FAILURE() << "no error; expected " << error_code_name(code);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
  }
}

// Derived by hand: F32 (rank 17) > BF16 (14) > F16 (13) > I8 (5) > U8 (4); offsets tile from 0;
// __metadata__ first with sorted keys; compact JSON; 322 characters padded with 6 spaces to 328 = 0x148.
TEST(PlanLayout, GoldenPrefix) {
  const std::vector<TensorSpec> specs = {
      {"b.up", DType::F16, {2, 2}}, {"a", DType::BF16, {3}}, {"c", DType::I8, {5}},
      {"x", DType::F32, {}},        {"m", DType::U8, {0}},
  };
  const Metadata metadata = {{"ss_b", "2"}, {"ss_a", "1\n\"q\""}};
  const Layout layout = plan_layout(specs, metadata, true);

  const std::string json = R"({"__metadata__":{"ss_a":"1\n\"q\"","ss_b":"2"},)"
                           R"("x":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"BF16","shape":[3],"data_offsets":[4,10]},)"
                           R"("b.up":{"dtype":"F16","shape":[2,2],"data_offsets":[10,18]},)"
                           R"("c":{"dtype":"I8","shape":[5],"data_offsets":[18,23]},)"
                           R"("m":{"dtype":"U8","shape":[0],"data_offsets":[23,23]}})";
  ASSERT_EQ(json.size(), 322u);
  const std::string expected = std::string("\x48\x01\0\0\0\0\0\0", 8) + json + "      ";
  EXPECT_EQ(layout.prefix, expected);
  EXPECT_EQ(layout.data_size, 23u);
  EXPECT_EQ(layout.file_size(), 8u + 328u + 23u);
  EXPECT_EQ(names_of(layout.tensors), (std::vector<std::string>{"x", "a", "b.up", "c", "m"}));
  EXPECT_EQ(layout.tensors[2].begin, 10u);
  EXPECT_EQ(layout.tensors[2].end, 18u);
  EXPECT_EQ(layout.tensors[2].shape, (std::vector<std::uint64_t>{2, 2}));
}

TEST(PlanLayout, EmptyFiles) {
  EXPECT_EQ(plan_layout({}, {}, false).prefix, std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  EXPECT_EQ(plan_layout({}, {}, true).prefix,
            std::string("\x18\0\0\0\0\0\0\0{\"__metadata__\":{}}     ", 32));
  // Metadata is left out when not asked for, whatever it holds.
  EXPECT_EQ(plan_layout({}, {{"k", "v"}}, false).prefix, std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
}

TEST(PlanLayout, NoPaddingWhenTheJsonIsAlreadyAMultipleOf8) {
  // {"abcd":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} is 56 characters.
  const Layout layout = plan_layout({{"abcd", DType::U8, {1}}}, {}, false);
  EXPECT_EQ(layout.prefix, std::string("\x38\0\0\0\0\0\0\0", 8) +
                               R"({"abcd":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})");
}

TEST(PlanLayout, PaddingAlwaysReachesAMultipleOf8) {
  for (std::size_t length = 0; length < 24; ++length) {
    const Layout layout = plan_layout({{std::string(length, 'n'), DType::F16, {1}}}, {}, false);
    const std::size_t json_length = 53 + length;  // {"":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}
    const std::size_t padding = (8 - json_length % 8) % 8;
    ASSERT_EQ(layout.prefix.size(), 8 + json_length + padding) << length;
    EXPECT_EQ(layout.prefix.size() % 8, 0u);
    EXPECT_EQ(layout.prefix.substr(8 + json_length), std::string(padding, ' '));
    EXPECT_EQ(static_cast<unsigned char>(layout.prefix[0]), json_length + padding);
  }
}

TEST(PlanLayout, OrdersByDtypeRankThenNameBytewise) {
  const std::vector<TensorSpec> specs = {
      {"z", DType::BOOL, {1}},    {"\xc3\xa9", DType::F16, {1}}, {"a_b", DType::F16, {1}},
      {"a.b", DType::F16, {1}},   {"B", DType::F16, {1}},        {"a", DType::F16, {1}},
      {"y", DType::BF16, {1}},    {"w", DType::U64, {1}},        {"v", DType::F8_E4M3, {1}},
      {"u", DType::F8_E5M2, {1}}, {"t", DType::I16, {1}},        {"s", DType::U16, {1}},
      {"r", DType::F4, {2}},      {"q", DType::F6_E2M3, {4}},    {"p", DType::F6_E3M2, {4}},
  };
  const Layout layout = plan_layout(specs, {}, false);
  EXPECT_EQ(names_of(layout.tensors), (std::vector<std::string>{"w", "y", "B", "a", "a.b", "a_b", "\xc3\xa9",
                                                                "s", "t", "v", "u", "p", "q", "r", "z"}));
  std::uint64_t offset = 0;
  for (const TensorInfo& tensor : layout.tensors) {
    EXPECT_EQ(tensor.begin, offset) << tensor.name;
    offset = tensor.end;
  }
  EXPECT_EQ(offset, layout.data_size);
  EXPECT_EQ(layout.data_size, 8u + 2 + 5 * 2 + 2 + 2 + 1 + 1 + 3 + 3 + 1 + 1);
}

TEST(PlanLayout, EscapesStringsLikeSerdeJson) {
  std::string value;
  for (int c = 0; c <= 0x20; ++c) {
    value.push_back(static_cast<char>(c));
  }
  value += "\x7f/\"\\\xc3\xa9\xf0\x9f\x98\x80";
  const Layout layout = plan_layout({}, {{"k", value}}, true);
  const std::string expected_value =
      R"(\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f)"
      R"(\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f )"
      "\x7f/\\\"\\\\\xc3\xa9\xf0\x9f\x98\x80";
  const std::string json = R"({"__metadata__":{"k":")" + expected_value + "\"}}";
  EXPECT_EQ(layout.prefix.substr(8, json.size()), json);
  EXPECT_EQ(layout.prefix.find_first_not_of(' ', 8 + json.size()), std::string::npos);
}

TEST(PlanLayout, RefusesDuplicateAndInvalidNames) {
  expect_error(ErrorCode::duplicate_key, [] {
    plan_layout({{"a", DType::F16, {1}}, {"b", DType::F16, {1}}, {"a", DType::F32, {1}}}, {}, false);
  });
  expect_error(ErrorCode::invalid_argument, [] { plan_layout({{"a\xff", DType::F16, {1}}}, {}, false); });
  expect_error(ErrorCode::invalid_argument, [] {
    plan_layout({{"__metadata__", DType::F16, {1}}}, {}, false);
  });
  expect_error(ErrorCode::invalid_argument, [] { plan_layout({}, {{"k\xc0\xaf", "v"}}, true); });
  expect_error(ErrorCode::invalid_argument, [] { plan_layout({}, {{"k", "\xed\xa0\x80"}}, true); });
  expect_error(ErrorCode::invalid_argument, [] { plan_layout({{"f4", DType::F4, {3}}}, {}, false); });
  expect_error(ErrorCode::invalid_argument, [] {
    plan_layout({{"huge", DType::F64, {std::uint64_t{1} << 62}}}, {}, false);
  });
}

TEST(TensorSpec, BytesOfEachWidth) {
  EXPECT_EQ((TensorSpec{"a", DType::F16, {3, 4}}.nbytes()), 24u);
  EXPECT_EQ((TensorSpec{"a", DType::F64, {}}.nbytes()), 8u);
  EXPECT_EQ((TensorSpec{"a", DType::F4, {6}}.nbytes()), 3u);
  EXPECT_EQ((TensorSpec{"a", DType::F6_E3M2, {4}}.nbytes()), 3u);
  EXPECT_EQ((TensorSpec{"a", DType::BOOL, {0, 7}}.nbytes()), 0u);
}

std::string data_bytes(std::uint64_t size) {
  std::string data;
  for (std::uint64_t i = 0; i < size; ++i) {
    data.push_back(static_cast<char>(i * 7 + 3));
  }
  return data;
}

TEST(PlanLayout, RoundTripsThroughTheParser) {
  std::mt19937 random(11);
  const std::vector<DType> dtypes = {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I8,
                                     DType::U8,  DType::BOOL, DType::I64, DType::F4,  DType::C64};
  std::vector<TensorSpec> specs;
  for (int i = 0; i < 300; ++i) {
    TensorSpec spec;
    spec.name = "lora_unet_" + std::to_string(random() % 1000) + "_\xc3\xa9\"\\\n." + std::to_string(i);
    spec.dtype = dtypes[random() % dtypes.size()];
    const std::size_t rank = random() % 3 + (spec.dtype == DType::F4 ? 1 : 0);  // F4 needs an even count
    for (std::size_t d = 0; d < rank; ++d) {
      spec.shape.push_back(random() % 5 * 2);  // even sizes keep F4 whole; zero sizes appear
    }
    specs.push_back(spec);
  }
  const Metadata metadata = {{"ss_network_dim", "16"}, {"ss_tag_frequency", "{\"a\": 1}\t\x01"}, {"", ""}};
  for (const bool with_metadata : {true, false}) {
    const Layout layout = plan_layout(specs, metadata, with_metadata);
    const std::string file = layout.prefix + data_bytes(layout.data_size);
    const Header header = parse_header(std::as_bytes(std::span(file)), file.size(), "roundtrip");
    EXPECT_EQ(header.header_size, layout.prefix.size() - 8);
    EXPECT_EQ(header.has_metadata, with_metadata);
    EXPECT_EQ(header.metadata, with_metadata ? metadata : Metadata{});
    ASSERT_EQ(header.tensors.size(), layout.tensors.size());
    for (std::size_t i = 0; i < header.tensors.size(); ++i) {
      const TensorInfo& parsed = header.tensors[i];
      const TensorInfo& planned = layout.tensors[i];
      ASSERT_EQ(parsed.name, planned.name) << i;
      ASSERT_EQ(parsed.dtype, planned.dtype) << i;
      ASSERT_EQ(parsed.shape, planned.shape) << i;
      ASSERT_EQ(parsed.begin, planned.begin) << i;
      ASSERT_EQ(parsed.end, planned.end) << i;
    }
  }
}

TEST(SsOnly, KeepsOnlySsKeys) {
  const Metadata metadata = {
      {"ss_a", "1"}, {"ss_", "2"}, {"sshs_model_hash", "x"}, {"SS_b", "3"}, {"modelspec.title", "t"},
      {"s_s", "4"},  {"ss_z", ""}};
  EXPECT_EQ(ss_only(metadata), (Metadata{{"ss_a", "1"}, {"ss_", "2"}, {"ss_z", ""}}));
  EXPECT_TRUE(ss_only({}).empty());
}

}  // namespace
}  // namespace lorakit
