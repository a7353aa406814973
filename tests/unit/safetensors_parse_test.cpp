// parse_header on files built byte by byte here: one bad file per rule (exact error code, message
// naming the file and the tensor) and the edge cases the format allows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kFile = "dir/bad file.safetensors";

std::string le64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  }
  return bytes;
}

// 8-byte length, header text, then `data_size` data bytes.
std::string file_bytes(std::string_view header, std::size_t data_size) {
  return le64(header.size()) + std::string(header) + std::string(data_size, '\x5a');
}

Header parse(const std::string& bytes) {
  return parse_header(std::as_bytes(std::span(bytes)), bytes.size(), kFile);
}

// Expects `bytes` to be refused with `code`; the message names the file and, if given, the tensor.
void expect_refused(const std::string& bytes, ErrorCode code, std::string_view tensor = "") {
  SCOPED_TRACE(bytes.size() > 8 ? bytes.substr(8, 200) : std::string("<short>"));
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted; expected " << error_code_name(code);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error_code_name(error.code()) << ": " << error.what();
    EXPECT_THAT(error.what(), HasSubstr(std::string(kFile) + ": ")) << error.what();
    if (!tensor.empty()) {
      EXPECT_THAT(error.what(), HasSubstr("tensor '" + std::string(tensor) + "'")) << error.what();
    }
  }
}

// A header of one valid U8 tensor "t" of 4 bytes, with `entry` replacing its JSON object.
std::string one_tensor(std::string_view entry, std::size_t data_size = 4) {
  return file_bytes("{\"t\":" + std::string(entry) + "}", data_size);
}

// ---- one bad file per rule ------------------------------------------------------------------------

TEST(ParseHeaderRefuses, FilesShorterThanTheLengthField) {
  expect_refused("", ErrorCode::file_too_short);
  expect_refused(std::string("\x02\0\0\0\0\0\0", 7), ErrorCode::file_too_short);
}

TEST(ParseHeaderRefuses, HeaderLengthAbove100Million) {
  expect_refused(le64(100'000'001) + "{}", ErrorCode::header_too_large);
  expect_refused(le64(~std::uint64_t{0}) + "{}", ErrorCode::header_too_large);
}

TEST(ParseHeaderRefuses, HeaderRunningPastTheEndOfTheFile) {
  expect_refused(le64(100) + std::string(50, ' '), ErrorCode::header_beyond_eof);
  expect_refused(le64(3) + "{}", ErrorCode::header_beyond_eof);
  expect_refused(le64(100'000'000) + "{}", ErrorCode::header_beyond_eof);
}

TEST(ParseHeaderRefuses, InvalidUtf8) {
  expect_refused(file_bytes("{\"a\xff\":{}}", 0), ErrorCode::header_invalid_utf8);
  expect_refused(file_bytes("{\"\xc0\xaf\":1}", 0), ErrorCode::header_invalid_utf8);          // overlong '/'
  expect_refused(file_bytes("{\"\xed\xa0\x80\":1}", 0), ErrorCode::header_invalid_utf8);      // surrogate
  expect_refused(file_bytes("{\"\xf4\x90\x80\x80\":1}", 0), ErrorCode::header_invalid_utf8);  // > U+10FFFF
  expect_refused(file_bytes("{}  \xe2\x82", 0), ErrorCode::header_invalid_utf8);              // truncated
  expect_refused(file_bytes("{\"\x80\":1}", 0), ErrorCode::header_invalid_utf8);  // lone continuation
}

TEST(ParseHeaderRefuses, InvalidJson) {
  for (const std::string& header : std::vector<std::string>{
           "", "   ", "{", "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}", "{} x", "{}{}",
           std::string("{}\0", 3), std::string("{\0}", 3), std::string("{}\0 x", 5), "\xEF\xBB\xBF{}",
           "{/*c*/}", "{'a':1}", "{\"__metadata__\":{},}", "{\"a\" 1}", "{\"a\\q\":1}", "{\"\\ud800\":1}",
           "{\"a\x01\":1}", "{\"__metadata__\":{\"k\":\"v\"}},"}) {
    expect_refused(file_bytes(header, 0), ErrorCode::header_invalid_json);
  }
}

TEST(ParseHeaderRefuses, HeaderThatIsNotAnObject) {
  for (const char* header : {"[]", "\"text\"", "3", "null", "true", " [ {} ] "}) {
    expect_refused(file_bytes(header, 0), ErrorCode::header_not_object);
  }
}

TEST(ParseHeaderRefuses, DuplicateKeysAtEveryLevel) {
  const std::string entry = R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  expect_refused(file_bytes("{\"t\":" + entry + ",\"t\":" + entry + "}", 4), ErrorCode::duplicate_key, "t");
  expect_refused(file_bytes(R"({"__metadata__":{},"__metadata__":{}})", 0), ErrorCode::duplicate_key);
  expect_refused(file_bytes(R"({"__metadata__":{"k":"1","j":"2","k":"3"}})", 0), ErrorCode::duplicate_key);
  expect_refused(one_tensor(R"({"dtype":"U8","dtype":"U8","shape":[4],"data_offsets":[0,4]})"),
                 ErrorCode::duplicate_key, "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4],"shape":[4],"data_offsets":[0,4]})"),
                 ErrorCode::duplicate_key, "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4],"data_offsets":[0,4]})"),
                 ErrorCode::duplicate_key, "t");
  // A key spelled with an escape is the same key.
  expect_refused(file_bytes("{\"t\":" + entry + ",\"\\u0074\":" + entry + "}", 4), ErrorCode::duplicate_key,
                 "t");
}

TEST(ParseHeaderRefuses, MetadataThatIsNotAnObjectOfStrings) {
  for (const char* header :
       {R"({"__metadata__":[]})", R"({"__metadata__":"x"})", R"({"__metadata__":null})",
        R"({"__metadata__":1})", R"({"__metadata__":{"k":1}})", R"({"__metadata__":{"k":{}}})",
        R"({"__metadata__":{"k":null}})", R"({"__metadata__":{"k":["v"]}})", R"({"__metadata__":{"k":true}})",
        R"({"__metadata__":{"a":"1","k":-1}})"}) {
    expect_refused(file_bytes(header, 0), ErrorCode::metadata_invalid);
  }
}

TEST(ParseHeaderRefuses, TensorEntriesOfTheWrongForm) {
  for (const char* entry : {"[]", "\"U8\"", "4", "null", "true", R"({"shape":[4],"data_offsets":[0,4]})",
                            R"({"dtype":"U8","data_offsets":[0,4]})", R"({"dtype":"U8","shape":[4]})", "{}",
                            R"({"dtype":"U8","shape":[4],"data_offsets":[0,4],"extra":1})",
                            R"({"DTYPE":"U8","shape":[4],"data_offsets":[0,4]})",
                            R"({"dtype":8,"shape":[4],"data_offsets":[0,4]})",
                            R"({"dtype":["U8"],"shape":[4],"data_offsets":[0,4]})",
                            R"({"dtype":null,"shape":[4],"data_offsets":[0,4]})"}) {
    expect_refused(one_tensor(entry), ErrorCode::tensor_entry_invalid, "t");
  }
}

TEST(ParseHeaderRefuses, UnknownDtypes) {
  for (const char* dtype : {"F17", "f16", "", "FLOAT", "F8"}) {
    expect_refused(
        one_tensor(std::string(R"({"dtype":")") + dtype + R"(","shape":[4],"data_offsets":[0,4]})"),
        ErrorCode::unknown_dtype, "t");
  }
}

TEST(ParseHeaderRefuses, InvalidShapes) {
  for (const char* shape : {"4", "\"4\"", "{}", "null", "[-1]", "[4.0]", "[1.5]", "[4e0]", "[\"4\"]", "[[4]]",
                            "[null]", "[true]", "[18446744073709551616]", "[2,-2]"}) {
    expect_refused(one_tensor(std::string(R"({"dtype":"U8","shape":)") + shape + R"(,"data_offsets":[0,4]})"),
                   ErrorCode::invalid_shape, "t");
  }
  // Element count overflows 64 bits.
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]})"),
                 ErrorCode::invalid_shape, "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[18446744073709551615,2,0],"data_offsets":[0,4]})"),
                 ErrorCode::invalid_shape, "t");
}

TEST(ParseHeaderRefuses, InvalidOffsets) {
  for (const char* offsets : {"[0]", "[]", "[0,4,4]", "[-1,4]", "[0,4.0]", "[0,\"4\"]", "4", "{}", "null",
                              "[0,[4]]", "[0,18446744073709551616]", "[4,0]"}) {
    expect_refused(one_tensor(std::string(R"({"dtype":"U8","shape":[4],"data_offsets":)") + offsets + "}"),
                   ErrorCode::invalid_offsets, "t");
  }
}

TEST(ParseHeaderRefuses, SizeNotMatchingShapeAndDtype) {
  expect_refused(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), ErrorCode::size_mismatch,
                 "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[2,3],"data_offsets":[0,4]})"), ErrorCode::size_mismatch,
                 "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[],"data_offsets":[0,4]})"), ErrorCode::size_mismatch,
                 "t");
  // Sub-byte types: 3 x 4 bits and 3 x 6 bits are not whole bytes.
  expect_refused(one_tensor(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})", 2),
                 ErrorCode::size_mismatch, "t");
  expect_refused(one_tensor(R"({"dtype":"F6_E3M2","shape":[3],"data_offsets":[0,2]})", 2),
                 ErrorCode::size_mismatch, "t");
  // numel * bits overflows although numel fits.
  expect_refused(one_tensor(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]})"),
                 ErrorCode::size_mismatch, "t");
}

TEST(ParseHeaderRefuses, DataThatIsNotContiguous) {
  // Gap between the tensors.
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
                            12),
                 ErrorCode::data_not_contiguous, "b");
  // Overlap (listed out of order: sorting by offset finds it).
  expect_refused(file_bytes(R"({"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]},)"
                            R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                            6),
                 ErrorCode::data_not_contiguous, "b");
  // The first tensor does not start at 0.
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[4,8]})", 8),
                 ErrorCode::data_not_contiguous, "t");
  // Two tensors on the same bytes.
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})",
                            4),
                 ErrorCode::data_not_contiguous, "b");
}

TEST(ParseHeaderRefuses, TensorsNotCoveringTheDataSection) {
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})", 8),
                 ErrorCode::data_size_mismatch, "t");
  expect_refused(one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})", 3),
                 ErrorCode::data_size_mismatch, "t");
  expect_refused(file_bytes("{}", 1), ErrorCode::data_size_mismatch);
  expect_refused(file_bytes(R"({"__metadata__":{"a":"b"}})", 16), ErrorCode::data_size_mismatch);
}

TEST(ParseHeaderRefuses, MessagesSayWhatIsWrong) {
  try {
    parse(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"));
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              std::string(kFile) + ": tensor 't': data_offsets span 4 bytes but 2 elements of F32 need 8");
  }
}

// ---- accepted files -------------------------------------------------------------------------------

TEST(ParseHeaderAccepts, WhitespaceAroundTheObjectAndPadding) {
  const Header header = parse(file_bytes(
      " \n\t\r{ \"t\" : { \"dtype\" : \"U8\" , \"shape\" : [ 4 ] , \"data_offsets\" : [ 0 , 4 ] } }  "
      "\n      ",
      4));
  ASSERT_EQ(header.tensors.size(), 1u);
  EXPECT_EQ(header.tensors[0].name, "t");
  EXPECT_EQ(header.tensors[0].dtype, DType::U8);
  EXPECT_EQ(header.tensors[0].shape, std::vector<std::uint64_t>{4});
  EXPECT_FALSE(header.has_metadata);
}

TEST(ParseHeaderAccepts, EmptyHeaderAndEmptyMetadata) {
  const Header empty = parse(file_bytes("{}", 0));
  EXPECT_TRUE(empty.tensors.empty());
  EXPECT_FALSE(empty.has_metadata);
  EXPECT_EQ(empty.header_size, 2u);
  EXPECT_EQ(empty.data_start(), 10u);

  const Header with_metadata = parse(file_bytes(R"({"__metadata__":{}})", 0));
  EXPECT_TRUE(with_metadata.has_metadata);
  EXPECT_TRUE(with_metadata.metadata.empty());
}

TEST(ParseHeaderAccepts, MetadataStringsWithEscapes) {
  const Header header =
      parse(file_bytes(R"({"__metadata__":{"ss_x":"a\"b\\c\n\u00e9\/","":"","k":"v"}})", 0));
  EXPECT_TRUE(header.has_metadata);
  const Metadata expected = {{"ss_x", "a\"b\\c\n\xc3\xa9/"}, {"", ""}, {"k", "v"}};
  EXPECT_EQ(header.metadata, expected);
}

TEST(ParseHeaderAccepts, RankZeroAndZeroSizeTensors) {
  // z2 and z1 share offset 4 with zero size: header order is kept between them.
  const Header header = parse(file_bytes(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                                         R"("z2":{"dtype":"F16","shape":[3,0],"data_offsets":[4,4]},)"
                                         R"("z1":{"dtype":"BF16","shape":[0],"data_offsets":[4,4]},)"
                                         R"("w":{"dtype":"I16","shape":[1,1],"data_offsets":[4,6]},)"
                                         R"("zend":{"dtype":"U8","shape":[0],"data_offsets":[6,6]}})",
                                         6));
  ASSERT_EQ(header.tensors.size(), 5u);
  std::vector<std::string> names;
  for (const TensorInfo& tensor : header.tensors) {
    names.push_back(tensor.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"s", "z2", "z1", "w", "zend"}));
  EXPECT_EQ(header.tensors[0].numel(), 1u);
  EXPECT_TRUE(header.tensors[0].shape.empty());
  EXPECT_EQ(header.tensors[1].numel(), 0u);
  EXPECT_EQ(header.tensors[1].nbytes(), 0u);
}

TEST(ParseHeaderAccepts, SubByteTypesInWholeBytes) {
  const Header header = parse(file_bytes(R"({"q":{"dtype":"F4","shape":[3,2],"data_offsets":[0,3]},)"
                                         R"("r":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[3,6]}})",
                                         6));
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].dtype, DType::F4);
  EXPECT_EQ(header.tensors[1].dtype, DType::F6_E2M3);
}

TEST(ParseHeaderAccepts, UnicodeNamesRawOrEscaped) {
  const std::string raw = "unet.\xc3\xbc\xe2\x82\xac.\xf0\x9f\x98\x80";  // ü € 😀
  const Header header =
      parse(file_bytes("{\"" + raw +
                           "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                           R"("\u00fc\ud83d\ude00 \"q\"":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                       2));
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, raw);
  EXPECT_EQ(header.tensors[1].name, "\xc3\xbc\xf0\x9f\x98\x80 \"q\"");
  ASSERT_NE(header.find(raw), nullptr);
  EXPECT_EQ(header.find(raw)->begin, 0u);
}

TEST(ParseHeaderAccepts, OnlyThePrefixNeedsToBeGiven) {
  const std::string bytes = one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})", 4);
  const std::string prefix = bytes.substr(0, bytes.size() - 4);
  const Header header = parse_header(std::as_bytes(std::span(prefix)), bytes.size(), kFile);
  EXPECT_EQ(header.tensors.size(), 1u);
}

TEST(ParseHeaderAccepts, TensorsComeOutInDataOrderAndFindWorksOnCopies) {
  const Header header = parse(file_bytes(R"({"c":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},)"
                                         R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
                                         R"("b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                                         3));
  ASSERT_EQ(header.tensors.size(), 3u);
  EXPECT_EQ(header.tensors[0].name, "b");
  EXPECT_EQ(header.tensors[1].name, "a");
  EXPECT_EQ(header.tensors[2].name, "c");
  Header copy = header;
  const Header moved = std::move(copy);
  for (const Header* h : {&header, &moved}) {
    for (const char* name : {"a", "b", "c"}) {
      const TensorInfo* found = h->find(name);
      ASSERT_NE(found, nullptr) << name;
      EXPECT_EQ(found->name, name);
      EXPECT_GE(found, h->tensors.data());
      EXPECT_LT(found, h->tensors.data() + h->tensors.size());
    }
    EXPECT_EQ(h->find("d"), nullptr);
    EXPECT_EQ(h->find(""), nullptr);
    EXPECT_EQ(h->find("a "), nullptr);
  }
}

TEST(ParseHeaderAccepts, TenThousandTensorsQuickly) {
  constexpr int kTensors = 10'000;
  std::string header = R"({"__metadata__":{"ss_network_dim":"16"})";
  // Listed in reverse data order so the parser has to sort.
  for (int i = kTensors - 1; i >= 0; --i) {
    const auto begin = std::to_string(i * 64);
    const auto end = std::to_string(i * 64 + 64);
    header += ",\"lora_unet_block_" + std::to_string(i) +
              ".lora_down.weight\":{\"dtype\":\"F16\",\"shape\":[4,8],"
              "\"data_offsets\":[" +
              begin + "," + end + "]}";
  }
  header += "}";
  const std::string bytes = file_bytes(header, std::size_t{kTensors} * 64);
  const auto start = std::chrono::steady_clock::now();
  const Header parsed = parse(bytes);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(parsed.tensors.size(), static_cast<std::size_t>(kTensors));
  for (int i = 0; i < kTensors; ++i) {
    ASSERT_EQ(parsed.tensors[static_cast<std::size_t>(i)].begin, static_cast<std::uint64_t>(i) * 64);
  }
  EXPECT_EQ(parsed.find("lora_unet_block_1234.lora_down.weight")->begin, 1234u * 64);
  EXPECT_LT(seconds, 1.0) << "parse took " << seconds << " s";
}

}  // namespace
}  // namespace lorakit
