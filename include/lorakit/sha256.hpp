#pragma once
// SHA-256 (OpenSSL libcrypto), incremental.
#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace lorakit {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> bytes);
  std::string hex_digest();  // lowercase; finishes the hash

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::span<const std::byte> bytes);

}  // namespace lorakit
