#!/usr/bin/env bash
# Peak RSS against file size: resizes a ~300 MB Flux LoRA, the same LoRA four times over (~1.2 GB, the
# same largest module: --copies 4) and a ~1.2 GB Flux LoRA of 4× the rank (a 4× larger largest module),
# each with 1 and 2 threads, and prints their peak RSS side by side. Bounded memory means the middle
# row stays at the first row's level while the last one grows.
# Usage: bench/memory.sh [BUILD_DIR]   (default: build; needs BUILD_DIR/lorakit and BUILD_DIR/tests/lorakit-gen)
# Files go to /dev/shm when it has room (generating 2.7 GB on a slow shared disk takes minutes); the peak
# RSS of lorakit does not depend on where they are (it reads with pread, it maps nothing).
set -euo pipefail

build=${1:-build}
lorakit=$build/lorakit
gen=$build/tests/lorakit-gen
for tool in "$lorakit" "$gen" /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "memory.sh: $tool not found" >&2; exit 2; }
done
base=${TMPDIR:-/tmp}
if [ "$(df --output=avail -B1G /dev/shm 2>/dev/null | tail -1)" -gt 8 ] 2>/dev/null; then base=/dev/shm; fi
work=$(mktemp -d "$base/lorakit-memory.XXXXXX")
trap 'rm -rf "$work"' EXIT

# name | generator arguments
cases=(
  "flux_r32|--arch flux --rank 32 --dtype bf16"
  "flux_r32_x4|--arch flux --rank 32 --dtype bf16 --copies 4"
  "flux_r128|--arch flux --rank 128 --dtype bf16"
)

largest_tensor() {  # elements of the file's largest tensor
  python3 - "$1" <<'PY'
import json, math, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
print(max(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__"))
PY
}

peak_rss_mb() {  # file threads -> MiB
  /usr/bin/time -v -o "$work/time.txt" "$lorakit" resize "$1" -o "$work/out.safetensors" --method sv_fro \
    --param 0.95 --force -q --threads "$2" >/dev/null
  awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$work/time.txt"
}

echo "Peak RSS against file size: lorakit resize --method sv_fro --param 0.95 (files in $base)"
echo
echo "| file | MB in | modules | largest tensor (elements) | peak RSS MB, 1 thread | peak RSS MB, 2 threads |"
echo "|---|--:|--:|--:|--:|--:|"
for entry in "${cases[@]}"; do
  IFS='|' read -r name args <<<"$entry"
  file=$work/$name.safetensors
  # shellcheck disable=SC2086  # the arguments are words on purpose
  modules=$("$gen" $args --family kohya --kind lora --seed 1 -o "$file" | sed -n 's/.*modules=\([0-9]*\).*/\1/p')
  printf '| %s | %.0f | %s | %s | %s | %s |\n' "$name" "$(awk -v b="$(stat -c %s "$file")" 'BEGIN {print b / 1e6}')" \
    "$modules" "$(largest_tensor "$file")" "$(peak_rss_mb "$file" 1)" "$(peak_rss_mb "$file" 2)"
  rm -f "$file" "$work/out.safetensors"
done
