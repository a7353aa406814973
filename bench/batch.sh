#!/usr/bin/env bash
# Batch benchmark: 20 generated LoRAs of mixed architectures and formats, resized by `lorakit batch
# --preset med` with --jobs 1 and --jobs 2. Prints wall time, files/s, MB/s and peak RSS (GNU time),
# and checks that both runs wrote the same bytes.
# Usage: bench/batch.sh [BUILD_DIR]   (default: build; needs BUILD_DIR/lorakit and BUILD_DIR/tests/lorakit-gen)
set -euo pipefail

build=${1:-build}
lorakit=$build/lorakit
gen=$build/tests/lorakit-gen
for tool in "$lorakit" "$gen" /usr/bin/time; do
  [ -x "$tool" ] || { echo "batch.sh: $tool not found (build lorakit and lorakit-gen; apt-get install time)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# arch family kind rank shrink [extra generator flags]
specs=(
  "sd15 kohya lora 32 2"          "sd15 kohya locon 16 4 --conv"  "sd15 peft lora 16 2"
  "sd15 kohya loha 8 4"           "sd15 kohya lokr 16 4"          "sd15 kohya tucker 8 4"
  "sd15 kohya dora 16 4"          "sdxl kohya lora 32 4"          "sdxl kohya locon 16 4 --conv"
  "sdxl kohya loha 4 8"           "flux kohya lora 16 8"          "flux peft lora 32 8"
  "flux xlabs lora 16 8"          "sd3 kohya lora 16 8"           "hunyuan kohya lora 16 8"
  "wan14b kohya lora 32 8"        "wan14b lycoris lokr 16 8"      "wan13b comfy lora 16 4"
  "zimage kohya lora 32 4"        "zimage peft lora 16 4"
)
mkdir -p "$work/in"
seed=1
for spec in "${specs[@]}"; do
  read -r arch family kind rank shrink extra <<<"$spec"
  name=$(printf '%02d_%s_%s_%s.safetensors' "$seed" "$arch" "$family" "$kind")
  # shellcheck disable=SC2086  # $extra is a list of flags
  "$gen" --arch "$arch" --family "$family" --kind "$kind" --rank "$rank" --shrink "$shrink" --seed "$seed" \
    $extra -o "$work/in/$name" >/dev/null
  seed=$((seed + 1))
done
files=$(find "$work/in" -name '*.safetensors' | wc -l)
input_bytes=$(du -cb "$work/in"/*.safetensors | tail -1 | cut -f1)

run() {  # jobs -> "seconds rss_kb"
  local jobs=$1 start end
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time_$jobs.txt" "$lorakit" batch "$work/in" -o "$work/out_$jobs" --preset med \
    --jobs "$jobs" >"$work/stdout_$jobs.txt" 2>"$work/stderr_$jobs.txt" || {
    echo "batch.sh: lorakit batch --jobs $jobs failed:" >&2; cat "$work/stderr_$jobs.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') \
$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time_$jobs.txt")"
}

read -r seconds_1 rss_1 < <(run 1)
read -r seconds_2 rss_2 < <(run 2)
identical=yes
(cd "$work/out_1" && sha256sum -- *.safetensors) | (cd "$work/out_2" && sha256sum --quiet -c -) >/dev/null 2>&1 ||
  identical=NO
output_bytes=$(du -cb "$work/out_1"/*.safetensors | tail -1 | cut -f1)

echo "lorakit batch: $files LoRAs (mixed architectures and formats), --preset med, $(nproc) cores"
awk -v in_bytes="$input_bytes" -v out_bytes="$output_bytes" -v same="$identical" 'BEGIN {
  printf "  input %.1f MB -> output %.1f MB; outputs of both runs identical: %s\n", in_bytes / 1e6, out_bytes / 1e6, same }'
printf '%-8s %10s %10s %10s %14s\n' jobs seconds files/s MB/s "peak RSS MB"
awk -v files="$files" -v bytes="$input_bytes" -v s1="$seconds_1" -v r1="$rss_1" -v s2="$seconds_2" -v r2="$rss_2" 'BEGIN {
  printf "%-8s %10.2f %10.2f %10.1f %14.1f\n", 1, s1, files / s1, bytes / 1e6 / s1, r1 / 1024
  printf "%-8s %10.2f %10.2f %10.1f %14.1f\n", 2, s2, files / s2, bytes / 1e6 / s2, r2 / 1024 }'
[ "$identical" = yes ]
