#!/usr/bin/env bash
# bench/budget.sh BUILD — the byte-budget allocation (--target-size / --target-retention) against sv_fro 0.95 on
# one generated LoRA per architecture, planned exactly from one measurement of its spectra
# (bench/budget_compare), and the allocation's time on Flux rank 128 next to a whole resize.
# Environment: NO_BUILD=1; REPEATS (3) for the timed resizes.
set -euo pipefail

BUILD=$(cd "${1:?usage: bench/budget.sh BUILD}" && pwd)
REPEATS=${REPEATS:-3}
DATA=$BUILD/bench-data
OUT=$DATA/out
LOG=$BUILD/bench-budget-log.txt
mkdir -p "$OUT"
: >"$LOG"
log() { echo "[budget] $*" >&2; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  cmake --build "$BUILD" -j2 --target lorakit lorakit-gen budget_compare >>"$LOG" 2>&1
fi
GEN=$BUILD/tests/lorakit-gen
COMPARE=$BUILD/bench/budget_compare

# name | generator arguments (kohya names and shapes, trained-like spectra, seed 1)
CORPUS=(
  "sd15_r64_conv|--arch sd15 --rank 64 --dtype fp16 --conv"
  "sdxl_r32|--arch sdxl --rank 32 --dtype fp16"
  "flux_r32|--arch flux --rank 32 --dtype bf16"
  "hunyuan_r32|--arch hunyuan --rank 32 --dtype bf16"
  "wan14b_r32|--arch wan14b --rank 32 --dtype bf16"
  "zimage_r32|--arch zimage --rank 32 --dtype bf16"
)

# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"  # generate, field, median, now, calc

echo
echo "Budget allocation against per-module thresholds (\`bench/budget.sh\`; exact plans, as \`--dry-run\` reports them):"
echo "at the size sv_fro 0.95 writes, the mean Frobenius retention of \`--target-size\` (objective mean) and the"
echo "whole-file retention of \`--objective energy\`; at sv_fro's mean retention, the size of \`--target-retention\`."
echo
echo "| LoRA | MB | sv_fro 0.95: MB, mean, energy | budget at that size: mean (gain) | energy objective: energy (gain) | budget at sv_fro's mean: MB (saved) | allocations s |"
echo "|---|--:|---|---|---|---|--:|"
for entry in "${CORPUS[@]}"; do
  IFS='|' read -r name args <<<"$entry"
  generate "$name" "$args"
  line=$("$COMPARE" "$DATA/$name.safetensors" --threads 2 | tee -a "$LOG" | tail -1)
  f() { echo "$line" | field "$1"; }
  mb() { calc "$1 / 1000000"; }
  printf '| %s | %.1f | %.1f, %.2f%%, %.2f%% | %.2f%% (%+.2f) | %.2f%% (%+.2f) | %.1f (%.1f%%) | %.3f + %.3f |\n' \
    "$name" "$(mb "$(stat -c %s "$DATA/$name.safetensors")")" "$(mb "$(f sv_fro_bytes)")" \
    "$(calc "$(f sv_fro_mean) * 100")" "$(calc "$(f sv_fro_energy) * 100")" \
    "$(calc "$(f budget_mean) * 100")" "$(calc "($(f budget_mean) - $(f sv_fro_mean)) * 100")" \
    "$(calc "$(f energy_budget_energy) * 100")" "$(calc "($(f energy_budget_energy) - $(f sv_fro_energy)) * 100")" \
    "$(mb "$(f bytes_at_mean)")" "$(calc "(1 - $(f bytes_at_mean) / $(f sv_fro_bytes)) * 100")" \
    "$(f allocate_size_s)" "$(f allocate_retention_s)"
done
echo
echo "Gains are percentage points; 'allocations s' are the times of the two target plans (choosing every rank,"
echo "exact size fitting included), after one measurement of the spectra shared by all plans."

# The allocation's cost on Flux rank 128, next to whole resizes of the same file.
FLUX=flux_r128
generate "$FLUX" "--arch flux --rank 128 --dtype bf16"
in=$DATA/$FLUX.safetensors
line=$("$COMPARE" "$in" --threads 2 | tee -a "$LOG" | tail -1)
timed() {  # lorakit resize flags…: median wall seconds of REPEATS runs
  local samples=() start
  for ((i = 0; i < REPEATS; i++)); do
    start=$(now)
    "$BUILD/lorakit" resize "$in" -o "$OUT/$FLUX.budget.safetensors" --force -q --threads 2 "$@" >>"$LOG" 2>&1
    samples+=("$(calc "$(now) - $start")")
  done
  printf '%s\n' "${samples[@]}" | median
}
fro_wall=$(timed --method sv_fro --param 0.95)
target_wall=$(timed --target-size "$(echo "$line" | field sv_fro_bytes)")
echo
echo "Flux rank 128 ($(calc "$(stat -c %s "$in") / 1000000" | cut -d. -f1) MB), 2 threads, median of $REPEATS:" \
  "the allocation for \`--target-size\` at sv_fro 0.95's size takes $(echo "$line" | field allocate_size_s) s" \
  "(\`--target-retention\`: $(echo "$line" | field allocate_retention_s) s), measuring the spectra" \
  "$(echo "$line" | field measure_s) s. Whole resizes: \`--method sv_fro --param 0.95\` $(printf '%.2f' "$fro_wall") s," \
  "\`--target-size\` $(printf '%.2f' "$target_wall") s (a target measures every module before it chooses any rank," \
  "then reads the resized modules again for their singular vectors)."
