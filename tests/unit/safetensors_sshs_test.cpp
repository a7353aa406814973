// sshs hashes against sha256 of explicitly assembled serializations.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"
#include "lorakit/sha256.hpp"

namespace lorakit {
namespace {

std::span<const std::byte> bytes_of(std::string_view text) { return std::as_bytes(std::span(text)); }

std::string pattern(std::uint64_t size, unsigned seed) {
  std::string data(size, '\0');
  std::uint32_t state = seed;
  for (char& c : data) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  return data;
}

// Feeds the data section in pieces of growing, irregular sizes.
SshsHashes hash_in_pieces(const Layout& layout, const std::string& data) {
  SshsHasher hasher(layout);
  std::size_t offset = 0;
  for (std::size_t piece = 1; offset < data.size(); piece = piece * 2 + 3) {
    const std::size_t count = std::min(piece, data.size() - offset);
    hasher.update_data(bytes_of(std::string_view(data).substr(offset, count)));
    offset += count;
  }
  return hasher.finish();
}

struct Expected {
  std::string model;
  std::string legacy;
};

// kohya: model = sha256 of everything after the header; legacy = sha256 of file[0x100000:0x110000][:8].
Expected expected_hashes(const std::string& file, std::uint64_t data_start) {
  const std::string window = file.size() > 0x100000 ? file.substr(0x100000, 0x10000) : std::string();
  return {sha256_hex(bytes_of(std::string_view(file).substr(data_start))),
          sha256_hex(bytes_of(window)).substr(0, 8)};
}

void expect_matches(const Layout& layout, const std::string& data) {
  const std::string file = layout.prefix + data;
  const Expected expected = expected_hashes(file, layout.prefix.size());
  const SshsHashes hashes = hash_in_pieces(layout, data);
  EXPECT_EQ(hashes.model_hash, expected.model);
  EXPECT_EQ(hashes.legacy_hash, expected.legacy);
  EXPECT_EQ(hashes.legacy_hash.size(), 8u);
}

TEST(SshsHasher, LegacyWindowInTheData) {
  const Layout layout =
      plan_layout({{"a.lora_up.weight", DType::F16, {640, 1000}}, {"b", DType::F32, {70000}}},
                  {{"ss_network_dim", "16"}}, true);
  ASSERT_GT(layout.file_size(), 0x110000u);
  ASSERT_LT(layout.prefix.size(), 0x100000u);
  expect_matches(layout, pattern(layout.data_size, 1));
}

TEST(SshsHasher, LegacyWindowAcrossPrefixAndData) {
  const Layout layout = plan_layout({{"w", DType::BF16, {100000}}},
                                    {{"ss_big", std::string(0x100000 + 0x8000 - 200, 'm')}}, true);
  ASSERT_GT(layout.prefix.size(), 0x100000u);
  ASSERT_LT(layout.prefix.size(), 0x110000u);
  expect_matches(layout, pattern(layout.data_size, 2));
}

TEST(SshsHasher, LegacyWindowInsideThePrefix) {
  const Layout layout =
      plan_layout({{"w", DType::U8, {1000}}}, {{"ss_big", std::string(0x120000, 'm')}}, true);
  ASSERT_GT(layout.prefix.size(), 0x110000u);
  expect_matches(layout, pattern(layout.data_size, 3));
}

TEST(SshsHasher, FileEndingInsideTheWindowHashesWhatThereIs) {
  const Layout layout = plan_layout({{"w", DType::U8, {0x100000 + 100}}}, {}, true);
  ASSERT_GT(layout.file_size(), 0x100000u);
  ASSERT_LT(layout.file_size(), 0x110000u);
  expect_matches(layout, pattern(layout.data_size, 4));
}

TEST(SshsHasher, SmallFileHasTheLegacyHashOfNothing) {
  const Layout layout = plan_layout({{"a", DType::F16, {4, 4}}}, {{"ss_x", "y"}}, true);
  const std::string data = pattern(layout.data_size, 5);
  const SshsHashes hashes = hash_in_pieces(layout, data);
  EXPECT_EQ(hashes.legacy_hash, "e3b0c442");
  EXPECT_EQ(hashes.model_hash, sha256_hex(bytes_of(data)));
}

TEST(SshsHasher, EmptyDataSection) {
  SshsHasher hasher(plan_layout({}, {}, true));
  const SshsHashes hashes = hasher.finish();
  EXPECT_EQ(hashes.model_hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hashes.legacy_hash, "e3b0c442");
}

TEST(SshsHasher, WrongAmountOfDataIsAnError) {
  const Layout layout = plan_layout({{"a", DType::F16, {4}}}, {}, true);
  SshsHasher hasher(layout);
  hasher.update_data(bytes_of("1234567"));
  EXPECT_THROW(hasher.finish(), Error);
}

}  // namespace
}  // namespace lorakit
