// DataStream: the written bytes and their sshs hashes equal those of the data written in one piece.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"
#include "plan/data_stream.hpp"
#include "plan/output_sink.hpp"
#include "scratch_folder.hpp"

namespace lorakit::detail {
namespace {

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> data(size);
  std::uint32_t state = seed;
  for (std::byte& b : data) {
    state = state * 1664525u + 1013904223u;
    b = static_cast<std::byte>(state >> 24);
  }
  return data;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Tiny pieces (gathered), pieces that fill a chunk exactly or cross it, and pieces larger than a chunk
// (written without gathering), both right after a gathered run and on their own.
const std::vector<std::size_t> kPieceSizes = {
    2, 3, 4096, kDataChunk - 4101, 1, kDataChunk + 17, 300000, kDataChunk, 5, 3 * kDataChunk + 1, 700000, 700000, 9};

class DataStreamTest : public ::testing::TestWithParam<bool> {};

TEST_P(DataStreamTest, WritesAndHashesTheConcatenation) {
  const bool hashed = GetParam();
  std::vector<std::byte> all;
  std::vector<std::vector<std::byte>> pieces;
  for (std::size_t i = 0; i < kPieceSizes.size(); ++i) {
    pieces.push_back(pattern(kPieceSizes[i], static_cast<unsigned>(i) + 1));
    all.insert(all.end(), pieces.back().begin(), pieces.back().end());
  }
  const Layout layout = plan_layout({{"w", DType::U8, {all.size()}}}, {{"ss_x", "y"}}, true);

  testutil::ScratchFolder folder;
  const std::filesystem::path target = folder.path() / "out.safetensors";
  SshsHasher hasher(layout);
  {
    FileSink file(target, false);
    file.write(layout.prefix);
    DataStream stream(file, hashed ? &hasher : nullptr);
    for (const auto& piece : pieces) stream.append(piece);
    stream.finish();
    file.commit();
  }
  const std::string written = read_file(target);
  ASSERT_EQ(written.size(), layout.prefix.size() + all.size());
  EXPECT_TRUE(std::equal(all.begin(), all.end(), reinterpret_cast<const std::byte*>(written.data()) +
                                                     layout.prefix.size()));
  if (!hashed) return;
  SshsHasher whole(layout);
  whole.update_data(all);
  const SshsHashes expected = whole.finish();
  const SshsHashes streamed = hasher.finish();
  EXPECT_EQ(streamed.model_hash, expected.model_hash);
  EXPECT_EQ(streamed.model_hash, sha256_hex(all));
  EXPECT_EQ(streamed.legacy_hash, expected.legacy_hash);
}

INSTANTIATE_TEST_SUITE_P(HashedOrNot, DataStreamTest, ::testing::Bool());

}  // namespace
}  // namespace lorakit::detail
