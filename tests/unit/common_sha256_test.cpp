#include <gtest/gtest.h>

#include <string>

#include "lorakit/sha256.hpp"

namespace lorakit {
namespace {

std::span<const std::byte> bytes_of(std::string_view text) { return std::as_bytes(std::span(text)); }

// FIPS 180-2 / NIST test vectors.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(bytes_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(bytes_of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAsInUnevenPieces) {
  const std::string a(1'000'000, 'a');
  EXPECT_EQ(sha256_hex(bytes_of(a)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256 hasher;
  std::size_t offset = 0;
  for (std::size_t piece = 1; offset < a.size(); piece = piece * 3 + 1) {
    const std::size_t count = std::min(piece, a.size() - offset);
    hasher.update(bytes_of(std::string_view(a).substr(offset, count)));
    offset += count;
  }
  hasher.update({});
  EXPECT_EQ(hasher.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace lorakit
