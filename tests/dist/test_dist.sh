#!/usr/bin/env bash
# tests/dist/test_dist.sh TARBALL NATIVE_BUILD — the release tarball (`make dist`), unpacked in an empty
# folder: its binary needs only glibc's libraries, prints the tarball's version, gives the native
# build's results on the demo LoRA, and, on CPUs that qemu-user emulates, runs on an x86-64-v3 CPU
# and refuses older ones, naming what they lack, instead of crashing.
# Exit status 77 (ctest: skipped) when the tarball has not been built.
set -euo pipefail

tarball=${1:?usage: test_dist.sh TARBALL NATIVE_BUILD}
native=$(cd "${2:?usage: test_dist.sh TARBALL NATIVE_BUILD}" && pwd)
if [ ! -f "$tarball" ]; then
  echo "dist test: $tarball does not exist; run 'make dist' first"
  exit 77
fi
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")

fail() { echo "dist test: FAIL: $*" >&2; exit 1; }
step() { echo "dist test: $*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(basename "$tarball" .tar.gz)  # lorakit-VERSION-linux-x86_64
version=${name#lorakit-}
version=${version%-linux-x86_64}

step "unpacking $(basename "$tarball") into an empty folder"
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
[ "$(ls "$work/unpacked")" = "$name" ] || fail "the tarball's top folder is not $name: $(ls "$work/unpacked")"
contents=$(ls "$work/unpacked/$name" | tr '\n' ' ')
[ "$contents" = "README-dist.md README.md lorakit " ] || fail "unexpected contents: $contents"
dist=$work/unpacked/$name/lorakit

# ---- Only glibc ---------------------------------------------------------------------------------
glibc_libraries='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|(/lib64/)?ld-linux-x86-64\.so\.2)$'
needed=$(readelf -d "$dist" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || fail "readelf lists no NEEDED library (not a dynamic glibc program?)"
loaded=$(ldd "$dist" | awk '{print $1}')
for library in $needed $loaded; do
  [[ $library =~ $glibc_libraries ]] || fail "the binary needs $library, which is not part of glibc"
done
step "readelf NEEDED: $(echo $needed); ldd: $(echo $loaded)"

# The glibc version README-dist.md promises is the newest symbol version the binary asks for.
newest_glibc=$(readelf --version-info "$dist" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
promised=$(sed -n 's/.*needs glibc \([0-9.]*\) or newer.*/\1/p' "$work/unpacked/$name/README-dist.md")
[ "$newest_glibc" = "$promised" ] ||
  fail "the binary needs GLIBC_$newest_glibc, README-dist.md says glibc ${promised:-(nothing)}"
step "newest glibc symbol version needed: $newest_glibc (as README-dist.md says)"

# ---- The same results as the native build --------------------------------------------------------
[ "$("$dist" --version)" = "lorakit $version" ] || fail "--version says '$("$dist" --version)', not 'lorakit $version'"

# The demo LoRA (scripts/demo.sh).
"$native/tests/lorakit-gen" --arch sd15 --family kohya --kind lora --rank 64 --dtype fp16 --conv --seed 2026 \
  -o "$work/demo.safetensors" >/dev/null
same=$native/tests/dist/lorakit-same-results

# Runs one lorakit command line with each binary, each in its own folder with the same relative paths:
# the same stdout (but the report's "time:" line), and every file written the same results
# (lorakit-same-results: the two builds sum in different orders, see tests/dist/same_results.cpp).
# $2 names the file stdout goes to: "stdout.json" when it is JSON, compared as numbers, not bytes.
same_output() {
  local what=$1 stdout=$2
  shift 2
  rm -rf "$work/native" "$work/dist"
  mkdir "$work/native" "$work/dist"
  (cd "$work/native" && "$native/lorakit" "$@" | grep -v '^time: ' >"$stdout") || fail "native: lorakit $*"
  (cd "$work/dist" && "$dist" "$@" | grep -v '^time: ' >"$stdout") || fail "dist: lorakit $*"
  [ "$(ls "$work/native")" = "$(ls "$work/dist")" ] || fail "$what: the two builds wrote different files"
  step "$what: compared with the native build"
  # shellcheck disable=SC2046  # file names without spaces
  "$same" "$work/native" "$work/dist" $(ls "$work/dist") || fail "$what: not the native build's results"
}
same_output "inspect" stdout inspect ../demo.safetensors
same_output "inspect --json" stdout.json inspect ../demo.safetensors --json
same_output "resize sv_fro 0.95" stdout resize ../demo.safetensors -o fro.safetensors --method sv_fro --param 0.95 \
  --json fro.json
same_output "resize rank 16/8 bf16" stdout resize ../demo.safetensors -o r16.safetensors --rank 16 --conv-rank 8 \
  --dtype bf16 --json r16.json

# The comparison can fail: the release's output with the exponent of one factor element raised by 16.
mkdir "$work/mutated"
cp "$work/dist/r16.safetensors" "$work/mutated/"
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(-1, 2); high = f.read(1)[0]; f.seek(-1, 2); f.write(bytes([high ^ 0x40]))' "$work/mutated/r16.safetensors"
! "$same" "$work/native" "$work/mutated" r16.safetensors >/dev/null 2>"$work/mutated.err" ||
  fail "lorakit-same-results accepts an output with one element changed"
step "an output with one element changed is told apart: $(cat "$work/mutated.err")"

# ---- The CPU check, on emulated CPUs -------------------------------------------------------------
command -v qemu-x86_64 >/dev/null || fail "qemu-x86_64 is missing (Debian package qemu-user; scripts/setup.sh)"

# An x86-64-v3 CPU without AVX-512: the whole program runs (an inspect, which computes every spectrum,
# of a small file: emulation is slow).
"$native/tests/lorakit-gen" --arch sd15 --rank 16 --conv --shrink 4 --seed 2026 -o "$work/small.safetensors" >/dev/null
"$dist" inspect "$work/small.safetensors" >"$work/inspect.txt"
qemu-x86_64 -cpu Haswell "$dist" inspect "$work/small.safetensors" >"$work/haswell.txt" 2>/dev/null ||
  fail "the binary does not run on an emulated Haswell"
cmp -s "$work/haswell.txt" "$work/inspect.txt" || fail "inspect on an emulated Haswell differs"
step "runs on an emulated Haswell (x86-64-v3)"

# Prints the missing-feature list of a refusal on CPU model $1 (fails unless it is a clean refusal).
refusal() {
  local status=0
  qemu-x86_64 -cpu "$1" "$dist" --version >"$work/refused.out" 2>"$work/refused.err" || status=$?
  [ "$status" = 1 ] || fail "-cpu $1: exit status $status, not 1 ($(cat "$work/refused.err"))"
  [ ! -s "$work/refused.out" ] || fail "-cpu $1: the program ran ($(cat "$work/refused.out"))"
  grep -q '^lorakit: this build needs an x86-64-v3 CPU' "$work/refused.err" || fail "-cpu $1: $(cat "$work/refused.err")"
  sed -n 's/.*this CPU lacks \(.*\)\.$/\1/p' "$work/refused.err"
}
lacks=$(refusal Nehalem)
[ "$lacks" = "FMA, MOVBE, XSAVE, AVX, F16C, BMI1, AVX2, BMI2, LZCNT, AVX state enabled by the OS (XCR0)" ] ||
  fail "Nehalem: lacks '$lacks'"
step "an emulated Nehalem is refused: lacks $lacks"
# One feature taken away from a Haswell at a time: the refusal names exactly that one (without AVX or
# XSAVE, the OS state for AVX is not enabled either).
xcr0="AVX state enabled by the OS (XCR0)"
expected=("avx|AVX, $xcr0" "xsave|XSAVE, $xcr0" "avx2|AVX2" "fma|FMA" "f16c|F16C" "bmi1|BMI1" "bmi2|BMI2"
          "movbe|MOVBE" "abm|LZCNT" "popcnt|POPCNT" "sse4.2|SSE4.2" "cx16|CMPXCHG16B" "lahf-lm|LAHF-SAHF")
for entry in "${expected[@]}"; do
  flag=${entry%%|*}
  lacks=$(refusal "Haswell,-$flag")
  [ "$lacks" = "${entry#*|}" ] || fail "Haswell without $flag: lacks '$lacks', not '${entry#*|}'"
done
step "a Haswell without one of ${#expected[@]} v2/v3 features is refused, naming exactly what is missing"
step "PASS"
