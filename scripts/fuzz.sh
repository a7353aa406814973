#!/usr/bin/env bash
# scripts/fuzz.sh BUILD SECONDS — runs every libFuzzer target of BUILD (configured with -DLORAKIT_FUZZ=ON)
# for SECONDS each, starting from its seed corpus fuzz/corpus/NAME; new inputs go to BUILD/fuzz-corpus/NAME
# (the seeds are never modified), crashes to BUILD/fuzz-artifacts/. Prints one line per target and fails
# if any target found a crash, a leak, a timeout or an out-of-memory input.
set -euo pipefail
BUILD=$(cd "${1:?usage: scripts/fuzz.sh BUILD SECONDS}" && pwd)
SECONDS_EACH=${2:?usage: scripts/fuzz.sh BUILD SECONDS}
SRC=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# A resize of a tiny file takes milliseconds; 10 s is a hang. Inputs are tiny LoRA files or headers.
declare -A MAX_LEN=([safetensors_header]=16384 [adapter_model]=32768 [resize]=65536)
failed=0
for source in "$SRC"/fuzz/*_fuzz.cpp; do
  name=$(basename "$source" _fuzz.cpp)
  target=$BUILD/fuzz/${name}_fuzz
  [ -x "$target" ] || { echo "fuzz: $target is missing (build with -DLORAKIT_FUZZ=ON)"; exit 1; }
  work=$BUILD/fuzz-corpus/$name
  artifacts=$BUILD/fuzz-artifacts/$name/
  mkdir -p "$work" "$artifacts"
  log=$BUILD/fuzz-$name.log
  start=$(date +%s)
  status=0
  "$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="${MAX_LEN[$name]:-65536}" \
    -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "$SRC/fuzz/corpus/$name" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o "cov: [0-9]*" "$log" | tail -1 | cut -d" " -f2 || true)
  echo "fuzz: $name: $((  $(date +%s) - start )) s, ${runs:-?} runs, coverage ${cov:-?}, corpus $(ls "$work" | wc -l) new inputs, exit $status"
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "fuzz: $name FAILED; the input is in $artifacts; log $log:"
    grep -E 'ERROR|SUMMARY|==[0-9]+==|deadly|Test unit written' "$log" | head -20
  fi
done
exit $failed
