#!/usr/bin/env bash
# bench/run.sh BUILD — lorakit's benchmark table (issues 2 and 10): generated LoRAs and LyCORIS files resized
# with sv_fro 0.95, each against its I/O floor and (plain LoRA) a dense-SVD reference, measured in the same
# run. See bench/README.md.
# Environment: REPEATS (default 3, medians), DENSE_MODULES_SD (8), DENSE_MODULES_FLUX (2), NO_BUILD=1,
# DIST (the release binary timed next to BUILD's CLI; default build-dist/lorakit, from `make dist`).
set -euo pipefail

BUILD=$(cd "${1:?usage: bench/run.sh BUILD}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
REPEATS=${REPEATS:-3}
DIST=${DIST:-$SRC/build-dist/lorakit}
DENSE_MODULES_SD=${DENSE_MODULES_SD:-8}
DENSE_MODULES_FLUX=${DENSE_MODULES_FLUX:-2}
DATA=$BUILD/bench-data
OUT=$DATA/out          # resize outputs and the I/O floor's file: one folder, one file system
RESULTS=$BUILD/bench-results.md
LOG=$BUILD/bench-log.txt
mkdir -p "$OUT"
: >"$LOG"

log() { echo "[bench] $*" >&2; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building bench targets in $BUILD"
  cmake --build "$BUILD" -j2 --target lorakit-gen io_floor dense_reference resize_driver >>"$LOG" 2>&1 ||
    log "build failed (see $LOG); using the binaries already there"
  cmake --build "$BUILD" -j2 --target lorakit >>"$LOG" 2>&1 ||
    log "the lorakit CLI does not build; timing bench/resize_driver (lorakit::resize_file) instead"
fi
GEN=$BUILD/tests/lorakit-gen
for tool in "$GEN" "$BUILD/bench/io_floor" "$BUILD/bench/dense_reference" "$BUILD/bench/resize_driver"; do
  [ -x "$tool" ] || { log "missing $tool"; exit 1; }
done
[ -x /usr/bin/time ] || { log "/usr/bin/time is missing: apt-get install time"; exit 1; }
if [ -x "$BUILD/lorakit" ]; then RESIZE=("$BUILD/lorakit" resize); TOOL="lorakit resize (CLI)"
else RESIZE=("$BUILD/bench/resize_driver"); TOOL="bench/resize_driver (lorakit::resize_file)"; fi
if [ ! -x "$DIST" ]; then log "no release binary at $DIST ('make dist' builds it): its column stays empty"; fi

# name | generator arguments | target seconds (2 threads) | I/O floor target (× floor, or - for none)
# LyCORIS files are compute-bound (issue 10 sets them a time and memory target only); the dense reference
# compares plain LoRA modules, so it runs on the LoRA files.
CASES=(
  "sd15_r128|--arch sd15 --kind lora --rank 128 --dtype fp16|0.5|2"
  "sdxl_r32|--arch sdxl --kind lora --rank 32 --dtype fp16|1|2"
  "flux_r32|--arch flux --kind lora --rank 32 --dtype bf16|1.5|2"
  "flux_r128|--arch flux --kind lora --rank 128 --dtype bf16|5|2"
  "sd15_loha32|--arch sd15 --kind loha --rank 32 --dtype fp16 --conv|10|-"
  "sd15_lokr32|--arch sd15 --kind lokr --rank 32 --dtype fp16 --conv|10|-"
  "flux_lokr16|--arch flux --kind lokr --rank 16 --dtype bf16|10|-"
)
SCALING_CASE=flux_r32  # also run with --threads 1
RSS_TARGET_MB=300

# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"  # generate, field, median, now, calc
over() { awk "BEGIN { exit !($1 > $2) }"; }           # true when $1 > $2

# One resize under /usr/bin/time -v: prints "WALL_SECONDS PEAK_RSS_KB CPU_PERCENT".
# Arguments: IN OUT THREADS [RESIZE COMMAND...] (default: BUILD's).
timed_resize() {
  local in=$1 out=$2 threads=$3 report=$OUT/time.txt start end
  shift 3
  [ $# -gt 0 ] || set -- "${RESIZE[@]}"
  start=$(now)
  /usr/bin/time -v -o "$report" "$@" "$in" -o "$out" --method sv_fro --param 0.95 --force -q \
    --threads "$threads" >>"$LOG" 2>&1
  end=$(now)
  echo "$(calc "$end - $start") $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$report")" \
    "$(sed -n 's/.*Percent of CPU this job got: \([0-9]*\)%/\1/p' "$report")"
}

floor_once() {
  "$BUILD/bench/io_floor" "$1" -o "$OUT/floor.safetensors" --repeats 1 | tee -a "$LOG" | field median_s
}

declare -A WALL RSS CPU FLOOR PLAN DENSE MODULES SIZE OUTSIZE WALL1 RSS1 CPU1 DIST_WALL DIST_SAME
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for entry in "${CASES[@]}"; do
  IFS='|' read -r name args target floor_target <<<"$entry"
  generate "$name" "$args"
done

for entry in "${CASES[@]}"; do
  IFS='|' read -r name args target floor_target <<<"$entry"
  in=$DATA/$name.safetensors
  out=$OUT/$name.resized.safetensors
  log "$name: resize ×$REPEATS interleaved with the I/O floor and the release binary"
  walls=() rsss=() cpus=() floors=() dist_walls=()
  for ((i = 0; i < REPEATS; i++)); do
    floors+=("$(floor_once "$in")")
    read -r wall rss cpu <<<"$(timed_resize "$in" "$out" 2)"
    walls+=("$wall") rsss+=("$rss") cpus+=("$cpu")
    if [ -x "$DIST" ]; then
      read -r wall rss cpu <<<"$(timed_resize "$in" "$OUT/$name.dist.safetensors" 2 "$DIST" resize)"
      dist_walls+=("$wall")
    fi
  done
  if [ -x "$DIST" ]; then
    DIST_WALL[$name]=$(printf '%s\n' "${dist_walls[@]}" | median)
    DIST_SAME[$name]=no
    if cmp -s "$out" "$OUT/$name.dist.safetensors"; then DIST_SAME[$name]=yes; fi
  fi
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | median)
  RSS[$name]=$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1)
  CPU[$name]=$(printf '%s\n' "${cpus[@]}" | median)
  FLOOR[$name]=$(printf '%s\n' "${floors[@]}" | median)
  SIZE[$name]=$(stat -c %s "$in")
  OUTSIZE[$name]=$(stat -c %s "$out")
  summary=$("$BUILD/bench/resize_driver" "$in" --plan-only --method sv_fro --param 0.95 --threads 2 -q |
    tee -a "$LOG")
  PLAN[$name]=$(echo "$summary" | field seconds)
  MODULES[$name]=$(echo "$summary" | field modules)
  if [ "$name" = "$SCALING_CASE" ]; then
    log "$name: resize ×$REPEATS with --threads 1"
    walls=() rsss=() cpus=()
    for ((i = 0; i < REPEATS; i++)); do
      read -r wall rss cpu <<<"$(timed_resize "$in" "$out" 1)"
      walls+=("$wall") rsss+=("$rss") cpus+=("$cpu")
    done
    WALL1[$name]=$(printf '%s\n' "${walls[@]}" | median)
    RSS1[$name]=$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1)
    CPU1[$name]=$(printf '%s\n' "${cpus[@]}" | median)
  fi
  DENSE[$name]="—"
  : >"$OUT/$name.dense.md"
  if [[ $args == *"--kind lora"* ]]; then
    modules=$DENSE_MODULES_SD
    [[ $name == flux* ]] && modules=$DENSE_MODULES_FLUX
    log "$name: dense reference on $modules modules"
    "$BUILD/bench/dense_reference" "$in" --modules "$modules" >"$OUT/$name.dense.md" 2>>"$LOG"
    cat "$OUT/$name.dense.md" >>"$LOG"
    DENSE[$name]="$(field median_speedup <"$OUT/$name.dense.md")×"
  fi
done
rm -f "$OUT/time.txt"

# ---- The table --------------------------------------------------------------------------------------
row() {  # name threads wall rss cpu target floor_target
  local name=$1 threads=$2 wall=$3 rss=$4 cpu=$5 target=$6 floor_target=$7 rss_mb ratio verdict target_text
  local misses=()
  rss_mb=$(calc "$rss / 1024")
  ratio=$(calc "$wall / ${FLOOR[$name]}")
  if [ "$target" = "-" ]; then
    verdict="scaling: t1/t2 = $(printf '%.2f' "$(calc "$wall / ${WALL[$name]}")")×"
    target_text="—"
  else
    if over "$wall" "$target"; then misses+=("time"); fi
    if [ "$floor_target" != "-" ] && over "$ratio" "$floor_target"; then misses+=("floor"); fi
    if over "$rss_mb" "$RSS_TARGET_MB"; then misses+=("RSS"); fi
    if [ ${#misses[@]} -eq 0 ]; then verdict="PASS"; else verdict="MISS ($(IFS=,; echo "${misses[*]}"))"; fi
    target_text="≤ $target s, ≤ $RSS_TARGET_MB MB"
    [ "$floor_target" = "-" ] || target_text="≤ $target s, ≤ ${floor_target}× floor, ≤ $RSS_TARGET_MB MB"
  fi
  printf '| %s | %.0f → %.0f | %s | %s | %.2f | %.2f | %s%% | %.0f | %.2f | %.2f× | %s | %s | %s |\n' \
    "$name" "$(calc "${SIZE[$name]} / 1000000")" "$(calc "${OUTSIZE[$name]} / 1000000")" "${MODULES[$name]}" \
    "$threads" "$wall" "${PLAN[$name]}" "$cpu" "$rss_mb" "${FLOOR[$name]}" "$ratio" "${DENSE[$name]}" \
    "$target_text" "$verdict"
}

# The release binary against BUILD's CLI, 2 threads; their runs alternate, so both see the same load.
dist_table() {
  [ -x "$DIST" ] || return 0
  echo
  echo "Release binary \`$DIST\` (x86-64-v3, \`make dist\`) against $TOOL, 2 threads, median of $REPEATS" \
    "alternating runs:"
  echo
  echo "| file | this build wall s | release wall s | release / this build | same output bytes |"
  echo "|---|--:|--:|--:|---|"
  for entry in "${CASES[@]}"; do
    IFS='|' read -r name args target floor_target <<<"$entry"
    printf '| %s | %.2f | %.2f | %.2f× | %s |\n' "$name" "${WALL[$name]}" "${DIST_WALL[$name]}" \
      "$(calc "${DIST_WALL[$name]} / ${WALL[$name]}")" "${DIST_SAME[$name]}"
  done
}

{
  echo "# lorakit benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB;" \
    "load average $LOAD_START at the start," \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the end (other sessions' processes share the cores: a CPU % well" \
    "under 200 on a 2-thread row means the threads did not get both cores)."
  commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$SRC" diff --quiet 2>/dev/null || commit+=" (with uncommitted changes)"
  echo "Commit: $commit."
  echo "Timed: $TOOL, \`--method sv_fro --param 0.95\`, median of $REPEATS runs (peak RSS: the largest)."
  echo
  echo "| file | MB in → out | modules | threads | wall s | pass 1 s | CPU | peak RSS MB | I/O floor s |" \
    "× floor | dense speed-up | target | result |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|"
  for entry in "${CASES[@]}"; do
    IFS='|' read -r name args target floor_target <<<"$entry"
    row "$name" 2 "${WALL[$name]}" "${RSS[$name]}" "${CPU[$name]}" "$target" "$floor_target"
    if [ -n "${WALL1[$name]:-}" ]; then
      row "$name" 1 "${WALL1[$name]}" "${RSS1[$name]}" "${CPU1[$name]}" "-" "-"
    fi
  done
  dist_table
  echo
  echo "Dense reference, per module (float32 ΔW + Eigen BDCSVD vs factored_svd + apply; decode excluded):"
  for entry in "${CASES[@]}"; do
    IFS='|' read -r name args target floor_target <<<"$entry"
    [ -s "$OUT/$name.dense.md" ] || continue
    echo
    echo "**$name**"
    echo
    grep '^|' "$OUT/$name.dense.md"
  done
} | tee "$RESULTS"
log "table written to $RESULTS (details in $LOG)"

if [ -x "$SRC/bench/batch.sh" ]; then "$SRC/bench/batch.sh" "$BUILD"; fi
echo
"$SRC/bench/memory.sh" "$BUILD" | tee -a "$RESULTS"
"$SRC/bench/budget.sh" "$BUILD" | tee -a "$RESULTS"
