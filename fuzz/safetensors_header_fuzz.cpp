// Fuzz target: parse_header must either accept the bytes or throw lorakit::Error — never crash,
// hang, or throw anything else.
#include <cstddef>
#include <cstdint>
#include <span>

#include "lorakit/error.hpp"
#include "lorakit/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const lorakit::Header header = lorakit::parse_header(bytes, size, "fuzz-input");
    for (const lorakit::TensorInfo& tensor : header.tensors) {
      if (header.find(tensor.name) == nullptr) {
        __builtin_trap();  // every parsed tensor must be found by name
      }
    }
  } catch (const lorakit::Error&) {
  }
  return 0;
}
