// Reader on files written here byte by byte (prefix from a hand-written header, data from known values).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string le64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  }
  return bytes;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device device;
    folder_ = fs::path(::testing::TempDir()) /
              ("lorakit_reader_" + std::to_string(::getpid()) + "_" + std::to_string(device()));
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }

  fs::path write(const std::string& name, const std::string& bytes) const {
    const fs::path path = folder_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path folder_;
};

// One tensor of each float type plus an integer one; values exact in every type.
// F16 1.5 = 0x3E00, -2.25 = 0xC080; BF16 1.5 = 0x3FC0, -2.25 = 0xC010.
std::string float_file() {
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                             R"("f":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]},)"
                             R"("d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},)"
                             R"("i":{"dtype":"I32","shape":[1],"data_offsets":[32,36]}} )";
  return le64(header.size()) + header + raw(std::vector<std::uint16_t>{0x3E00, 0xC080}) +
         raw(std::vector<std::uint16_t>{0x3FC0, 0xC010}) + raw(std::vector<float>{1.5f, -2.25f}) +
         raw(std::vector<double>{1.5, -2.25}) + raw(std::vector<std::int32_t>{-7});
}

TEST_F(ReaderTest, ReadsAndDecodesEachFloatType) {
  const fs::path path = write("floats.safetensors", float_file());
  const Reader reader(path);
  EXPECT_EQ(reader.path(), path);
  EXPECT_EQ(reader.file_size(), fs::file_size(path));
  ASSERT_EQ(reader.header().tensors.size(), 5u);
  for (const char* name : {"h", "b", "f", "d"}) {
    const TensorInfo& info = *reader.header().find(name);
    EXPECT_EQ(reader.read_doubles(info), (std::vector<double>{1.5, -2.25})) << name;
    EXPECT_EQ(reader.read_floats(info), (std::vector<float>{1.5f, -2.25f})) << name;
  }
  const TensorInfo& integer = *reader.header().find("i");
  EXPECT_EQ(reader.read(integer),
            (std::vector<std::byte>{std::byte{0xF9}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}}));
  std::vector<std::byte> first(8);
  reader.read_at(0, first);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(first.data()), 8), le64(reader.header().header_size));
}

TEST_F(ReaderTest, RefusesToDecodeNonFloatTensors) {
  const Reader reader(write("ints.safetensors", float_file()));
  try {
    reader.read_doubles(*reader.header().find("i"));
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::adapter_dtype_unsupported);
    EXPECT_THAT(error.what(), HasSubstr("ints.safetensors: tensor 'i': "));
  }
}

TEST_F(ReaderTest, WrongBufferSizeAndRangesPastTheEndAreRefused) {
  const Reader reader(write("f.safetensors", float_file()));
  std::vector<std::byte> small(3);
  EXPECT_THROW(reader.read(*reader.header().find("h"), small), Error);
  std::vector<std::byte> two(2);
  try {
    reader.read_at(reader.file_size() - 1, two);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_read);
  }
}

TEST_F(ReaderTest, LargeTensorDecodesAcrossChunks) {
  constexpr std::size_t kCount = 1'300'001;  // 2.6 MB of F16: several internal read pieces
  std::vector<std::uint16_t> halves(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    halves[i] = static_cast<std::uint16_t>(0x3C00 + i % 1024);  // 1 + (i % 1024) / 1024
  }
  const std::string header = R"({"w":{"dtype":"F16","shape":[)" + std::to_string(kCount) +
                             R"(],"data_offsets":[0,)" + std::to_string(2 * kCount) + "]}}";
  const Reader reader(write("big.safetensors", le64(header.size()) + header + raw(halves)));
  const std::vector<double> values = reader.read_doubles(reader.header().tensors[0]);
  ASSERT_EQ(values.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(values[i], 1.0 + static_cast<double>(i % 1024) / 1024.0) << i;
  }
}

TEST_F(ReaderTest, ConcurrentReadsAgree) {
  std::string data;
  std::string header = "{";
  constexpr int kTensors = 64;
  for (int t = 0; t < kTensors; ++t) {
    const std::size_t begin = data.size();
    for (int i = 0; i < 4096; ++i) {
      data.push_back(static_cast<char>(t * 31 + i));
    }
    header += std::string(t ? "," : "") + "\"t" + std::to_string(t) + R"(":{"dtype":"U8","shape":[4096],)" +
              R"("data_offsets":[)" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  const Reader reader(write("many.safetensors", le64(header.size()) + header + data));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int worker = 0; worker < 4; ++worker) {
    threads.emplace_back([&, worker] {
      for (int round = 0; round < 20; ++round) {
        for (const TensorInfo& info : reader.header().tensors) {
          const std::vector<std::byte> bytes = reader.read(info);
          if (std::memcmp(bytes.data(), data.data() + info.begin, bytes.size()) != 0) {
            ++mismatches[static_cast<std::size_t>(worker)];
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
}

TEST_F(ReaderTest, MissingFileAndFolderAreOpenErrors) {
  try {
    Reader reader(folder_ / "missing.safetensors");
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_open);
    EXPECT_THAT(error.what(), HasSubstr("missing.safetensors"));
    EXPECT_THAT(error.what(), HasSubstr("No such file or directory"));
  }
  try {
    Reader reader(folder_);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_open);
  }
}

TEST_F(ReaderTest, ContainerErrorsNameTheFile) {
  const fs::path short_file = write("short.safetensors", "abc");
  const fs::path beyond = write("beyond.safetensors", le64(1000) + "{}");
  const fs::path bad_json = write("badjson.safetensors", le64(4) + "{\"a\"");
  for (const auto& [path, code] :
       {std::pair{short_file, ErrorCode::file_too_short}, std::pair{beyond, ErrorCode::header_beyond_eof},
        std::pair{bad_json, ErrorCode::header_invalid_json}}) {
    try {
      Reader reader(path);
      FAIL() << path;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), code) << error.what();
      EXPECT_THAT(error.what(), HasSubstr(path.string() + ": "));
    }
  }
}

TEST_F(ReaderTest, FileTruncatedAfterOpeningIsAReadError) {
  const fs::path path = write("shrinks.safetensors", float_file());
  const Reader reader(path);
  fs::resize_file(path, reader.header().data_start() + 10);
  try {
    reader.read_doubles(*reader.header().find("d"));
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_read);
    EXPECT_THAT(error.what(), HasSubstr("shrinks.safetensors"));
  }
}

}  // namespace
}  // namespace lorakit
