#!/usr/bin/env bash
# The demo: a bundled example LoRA (an SD1.5 kohya LoRA, rank 64, fp16, generated deterministically
# from a fixed seed with trained-like spectra), inspected, then resized with the "high" preset
# (sv_fro 0.95), then resized to the same size with the ranks chosen across the file (--target-size).
set -euo pipefail
build=${1:-build}
out=demo-out
mkdir -p "$out"
example=$out/sd15_rank64_example.safetensors
resized=$out/sd15_rank64_example.resized.safetensors
"$build/tests/lorakit-gen" --arch sd15 --family kohya --kind lora --rank 64 --dtype fp16 --conv --seed 2026 \
  -o "$example" --force >/dev/null
echo "== lorakit inspect $example"
"$build/lorakit" inspect "$example"
echo
echo "== lorakit resize $example -o $resized --method sv_fro --param 0.95 --force"
"$build/lorakit" resize "$example" -o "$resized" --method sv_fro --param 0.95 --force --json "$out/report.json"
echo
size=$(stat -c %s "$resized")
budget=$out/sd15_rank64_example.budget.safetensors
echo "== the same size, ranks chosen across the file: lorakit resize $example -o $budget --target-size $size --force"
"$build/lorakit" resize "$example" -o "$budget" --target-size "$size" --force
echo
echo "== first modules of the per-module report (--verbose):"
"$build/lorakit" resize "$example" --dry-run --method sv_fro --param 0.95 --verbose >"$out/verbose.txt"
head -n 8 "$out/verbose.txt"  # (a pipe into head would end the job with SIGPIPE under pipefail)
echo
echo "Full JSON report: $out/report.json"
