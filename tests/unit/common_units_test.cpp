// Byte sizes: what the reports print and what --target-size accepts.
#include <gtest/gtest.h>

#include <string>

#include "lorakit/error.hpp"
#include "lorakit/units.hpp"

namespace lorakit {
namespace {

TEST(Units, FormatsDecimalUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(128'883), "128.9 kB");
  EXPECT_EQ(format_bytes(150'200'000), "150.2 MB");
  EXPECT_EQ(format_bytes(1'500'000'000), "1.5 GB");
}

TEST(Units, ParsesDecimalAndBinarySizes) {
  EXPECT_EQ(parse_size("50MB", "--target-size"), 50'000'000u);
  EXPECT_EQ(parse_size("50mb", "--target-size"), 50'000'000u);
  EXPECT_EQ(parse_size("1.5GB", "--target-size"), 1'500'000'000u);
  EXPECT_EQ(parse_size("800KiB", "--target-size"), 800u * 1024u);
  EXPECT_EQ(parse_size("48MiB", "--target-size"), 48u * 1024u * 1024u);
  EXPECT_EQ(parse_size("2GiB", "--target-size"), 2ull << 30);
  EXPECT_EQ(parse_size("123456", "--target-size"), 123'456u);
  EXPECT_EQ(parse_size("123456B", "--target-size"), 123'456u);
  EXPECT_EQ(parse_size("1.0005kB", "--target-size"), 1000u);  // rounded down to whole bytes
}

TEST(Units, RejectsWhatIsNotASize) {
  for (const char* text : {"", "MB", "50XB", "-5MB", "5 MB", "1e9", "0", "0.4B", "1..5MB", "99999999999TB"}) {
    try {
      parse_size(text, "--target-size");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_EQ(std::string(e.what()), "--target-size: expected a size such as 50MB, 1.5GB, 800MiB or 123456 (bytes), got '" +
                                           std::string(text) + "'");
    }
  }
}

}  // namespace
}  // namespace lorakit
