// The release binary's CPU check (linked only into the LORAKIT_DIST build, see cmake/dist.cmake).
//
// The rest of that binary is compiled for x86-64-v3 and may execute AVX2 or FMA instructions in any
// static initialiser, before main(). So this check is registered in .preinit_array, which the
// dynamic loader runs before every initialiser of the program and of its libraries, and this file is
// compiled for baseline x86-64. It uses no C++ library code at all: an inline function or template
// instantiated here could be merged at link time with a copy compiled for x86-64-v3 elsewhere.
#include <cpuid.h>
#include <unistd.h>

#include <cstdint>

namespace {

// The CPUID words the x86-64 psABI levels v2 and v3 are defined on, and the OS's XCR0.
struct CpuWords {
  std::uint32_t leaf1_ecx = 0;
  std::uint32_t leaf7_ebx = 0;
  std::uint32_t ext1_ecx = 0;  // leaf 0x80000001
  std::uint64_t xcr0 = 0;      // 0 when the OS does not enable XSAVE (no OSXSAVE)
};

enum class Word { leaf1_ecx, leaf7_ebx, ext1_ecx };

struct Feature {
  const char* name;
  Word word;
  unsigned bit;
};

// x86-64-v2 and -v3 as the psABI lists them (v1 is every x86-64 CPU).
constexpr Feature kRequired[] = {
    {"SSE3", Word::leaf1_ecx, 0},    {"SSSE3", Word::leaf1_ecx, 9},   {"FMA", Word::leaf1_ecx, 12},
    {"CMPXCHG16B", Word::leaf1_ecx, 13}, {"SSE4.1", Word::leaf1_ecx, 19}, {"SSE4.2", Word::leaf1_ecx, 20},
    {"MOVBE", Word::leaf1_ecx, 22},  {"POPCNT", Word::leaf1_ecx, 23}, {"XSAVE", Word::leaf1_ecx, 26},
    {"AVX", Word::leaf1_ecx, 28},    {"F16C", Word::leaf1_ecx, 29},   {"BMI1", Word::leaf7_ebx, 3},
    {"AVX2", Word::leaf7_ebx, 5},    {"BMI2", Word::leaf7_ebx, 8},    {"LAHF-SAHF", Word::ext1_ecx, 0},
    {"LZCNT", Word::ext1_ecx, 5},
};
constexpr unsigned kOsxsaveBit = 27;               // leaf 1 ECX: the OS has enabled XGETBV
constexpr std::uint64_t kXcr0SseAvxState = 0b110;  // XMM and YMM state saved by the OS

std::uint32_t word_of(const CpuWords& cpu, Word word) {
  switch (word) {
    case Word::leaf1_ecx: return cpu.leaf1_ecx;
    case Word::leaf7_ebx: return cpu.leaf7_ebx;
    case Word::ext1_ecx: return cpu.ext1_ecx;
  }
  return 0;
}

std::uint64_t read_xcr0() {
  std::uint32_t low = 0, high = 0;
  __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (std::uint64_t{high} << 32) | low;
}

CpuWords read_cpu() {
  CpuWords cpu;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(1, 0, &a, &b, &c, &d)) cpu.leaf1_ecx = c;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) cpu.leaf7_ebx = b;
  if (__get_cpuid_count(0x80000001u, 0, &a, &b, &c, &d)) cpu.ext1_ecx = c;
  if (cpu.leaf1_ecx & (1u << kOsxsaveBit)) cpu.xcr0 = read_xcr0();
  return cpu;
}

// A fixed buffer: the message is short, and this code may use nothing that allocates.
struct Message {
  char text[512];
  unsigned size = 0;
  void add(const char* s) {
    while (*s != '\0' && size < sizeof text) text[size++] = *s++;
  }
};

// Appends ", NAME" for every missing requirement; returns how many are missing.
unsigned add_missing(const CpuWords& cpu, Message& message) {
  unsigned missing = 0;
  auto name_missing = [&](const char* name) {
    message.add(missing++ == 0 ? " " : ", ");
    message.add(name);
  };
  for (const Feature& feature : kRequired) {
    if ((word_of(cpu, feature.word) & (1u << feature.bit)) == 0) name_missing(feature.name);
  }
  if ((cpu.xcr0 & kXcr0SseAvxState) != kXcr0SseAvxState) name_missing("AVX state enabled by the OS (XCR0)");
  return missing;
}

void refuse_older_cpu(int, char**, char**) {
  Message message;
  message.add(
      "lorakit: this build needs an x86-64-v3 CPU (AVX2, FMA, F16C, BMI1/2, MOVBE, LZCNT: Intel Haswell, "
      "AMD Excavator or newer); this CPU lacks");
  if (add_missing(read_cpu(), message) == 0) return;
  message.add(".\nBuild lorakit from source on this machine instead (see README.md).\n");
  // Nothing to do if stderr is gone: the exit status still says it.
  [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, message.text, message.size);
  _exit(1);
}

// glibc calls .preinit_array entries with (argc, argv, envp) before any other initialiser.
[[gnu::used, gnu::section(".preinit_array")]] void (*const run_cpu_check_first)(int, char**, char**) =
    &refuse_older_cpu;

}  // namespace
