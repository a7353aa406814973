#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/adapter_model_fuzz.cpp and fuzz/resize_fuzz.cpp from files that
lorakit-gen makes (every naming family and module kind):
  corpus/adapter_model/NAME.txt          the header as text lines (NAME DTYPE D0,D1 / @KEY VALUE)
  corpus/resize/NAME.safetensors         a tiny file: the first modules of that LoRA, and its pass-through
  corpus/resize/NAME.cut.safetensors     the same file cut short (a broken seed)
Usage: fuzz/make_seeds.py BUILD_DIR (with BUILD_DIR/tests/lorakit-gen built)."""
import json
import pathlib
import re
import struct
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# name: lorakit-gen arguments (with --shrink 16 --rank 4 added)
SPECS = {
    "sd15_kohya_lora": "--arch sd15 --family kohya --kind lora --passthrough",
    "sd15_kohya_locon": "--arch sd15 --family kohya --kind locon --no-te",
    "sd15_kohya_tucker": "--arch sd15 --family kohya --kind tucker --no-te",
    "sd15_kohya_dora": "--arch sd15 --family kohya --kind dora",
    "sd15_kohya_loha": "--arch sd15 --family kohya --kind loha --conv --no-te",
    "sd15_kohya_loha_tucker": "--arch sd15 --family kohya --kind loha --conv --tucker --no-te",
    "sd15_kohya_lokr": "--arch sd15 --family kohya --kind lokr --conv --no-te",
    "sd15_kohya_lokr_full": "--arch sd15 --family kohya --kind lokr --lokr-mode full --no-te",
    "sd15_legacy_lora": "--arch sd15 --family legacy --kind lora",
    "sd15_peft_prefixed": "--arch sd15 --family peft --kind lora --peft-metadata prefixed",
    "sdxl_controllora": "--arch sdxl --family controllora --kind lora --no-te",
    "sdxl_kohya_mixed": "--arch sdxl --family kohya --kind lora --mixed-dtypes --no-te",
    "flux_peft_plain_infix": "--arch flux --family peft --kind lora --peft-metadata plain --peft-infix",
    "flux_peft_dora": "--arch flux --family peft --kind dora",
    "flux_xlabs": "--arch flux --family xlabs --kind lora",
    "flux_lycoris_lokr": "--arch flux --family lycoris --kind lokr --lokr-mode both",
    "wan_kohya_fun_locon": "--arch wan14b --family kohya-fun --kind locon",
    "zimage_comfy": "--arch zimage --family comfy --kind lora",
    "hunyuan_kohya": "--arch hunyuan --family kohya --kind lora --zero-module",
}
ROLE = re.compile(r"^(.*?)(\.(lora_(down|up|mid|A|B)|hada_\w+|lokr_\w+|alpha|scale|dora_scale|"
                  r"lora_magnitude_vector|down|up)(\.default)?(\.weight)?|"
                  r"(_lora|\.lora|\.lora_linear_layer)\.(down|up)\.weight)$")
MODULES_PER_SEED = 3
HEADER_LINES = 160


def read_safetensors(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def write_safetensors(path, header, tensors):
    """tensors: name -> (dtype, shape, bytes), laid out in name order."""
    entries, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if "__metadata__" in header:
        entries = {"__metadata__": header["__metadata__"], **entries}
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def header_lines(header):
    lines = [f"@{key} {value}" for key, value in header.get("__metadata__", {}).items()]
    for name in sorted(k for k in header if k != "__metadata__"):
        entry = header[name]
        lines.append(f"{name} {entry['dtype']} {','.join(str(d) for d in entry['shape'])}".rstrip())
    return lines[:HEADER_LINES]


def subset(header, data):
    """The tensors of the first MODULES_PER_SEED stems, and every tensor no stem claims."""
    by_stem, loose = {}, []
    for name in sorted(k for k in header if k != "__metadata__"):
        match = ROLE.match(name)
        (by_stem.setdefault(match.group(1), []) if match else loose).append(name)
    chosen = [n for stem in sorted(by_stem)[:MODULES_PER_SEED] for n in by_stem[stem]] + loose[:4]
    tensors = {}
    for name in chosen:
        entry = header[name]
        begin, end = entry["data_offsets"]
        tensors[name] = (entry["dtype"], entry["shape"], data[begin:end])
    return tensors


def main(build):
    gen = pathlib.Path(build) / "tests" / "lorakit-gen"
    text_dir, file_dir = HERE / "corpus" / "adapter_model", HERE / "corpus" / "resize"
    text_dir.mkdir(parents=True, exist_ok=True)
    file_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, args in SPECS.items():
            full = pathlib.Path(scratch) / f"{name}.safetensors"
            subprocess.run([str(gen), *args.split(), "--shrink", "16", "--rank", "4", "-o", str(full)],
                           check=True, stdout=subprocess.DEVNULL)
            header, data = read_safetensors(full)
            (text_dir / f"{name}.txt").write_text("\n".join(header_lines(header)) + "\n")
            tiny = file_dir / f"{name}.safetensors"
            write_safetensors(tiny, header, subset(header, data))
            cut = tiny.read_bytes()
            (file_dir / f"{name}.cut.safetensors").write_bytes(cut[: len(cut) * 3 // 4])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build")
