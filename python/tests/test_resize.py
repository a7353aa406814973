"""lorakit.resize / plan / resize_bytes / inspect / batch against the C++ CLI of the same build."""
import json
import math
import random
import subprocess
import sys

import pytest

import lorakit
import safetensors_py as st
from conftest import run_cli

# (Python keywords, the same request as CLI flags)
OPTION_SETS = [
    ({"rank": 8}, ["--rank", "8"]),
    ({"rank": 8, "conv_rank": 4, "dtype": "bf16"}, ["--rank", "8", "--conv-rank", "4", "--dtype", "bf16"]),
    ({"method": "sv_fro", "param": 0.9}, ["--method", "sv_fro", "--param", "0.9"]),
    ({"method": "sv_ratio", "param": 4, "rank": 12, "minimal": True},
     ["--method", "sv_ratio", "--param", "4", "--rank", "12", "--minimal"]),
    ({"method": "sv_cumulative", "param": 0.5, "dtype": "fp32", "threads": 1},
     ["--method", "sv_cumulative", "--param", "0.5", "--dtype", "fp32", "--threads", "1"]),
]


def without_timing(report):
    report = dict(report)
    for key in ("seconds", "input", "output"):
        report.pop(key)
    return report


@pytest.mark.parametrize("keywords,flags", OPTION_SETS)
def test_resize_is_byte_identical_to_the_cli(sd15, cli, tmp_path, keywords, flags):
    run_cli(cli, "resize", sd15, "-o", tmp_path / "cli.safetensors", "--json", tmp_path / "cli.json", "-q", *flags)
    report = lorakit.resize(sd15, tmp_path / "py.safetensors", **keywords)
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    cli_report = json.loads((tmp_path / "cli.json").read_text())
    assert without_timing(report.to_dict()) == without_timing(cli_report)
    assert report.output == str(tmp_path / "py.safetensors")
    assert report.output_bytes == (tmp_path / "py.safetensors").stat().st_size


def test_report_attributes_are_the_json_figures(sd15, tmp_path):
    report = lorakit.resize(sd15, tmp_path / "out.safetensors", method="sv_fro", param=0.9)
    as_dict = report.to_dict()
    assert report.average_fro == pytest.approx(as_dict["average_fro_retention"])
    assert report.energy_weighted_fro == pytest.approx(as_dict["energy_weighted_fro_retention"])
    assert (report.resized, report.unchanged, report.kept) == (
        as_dict["modules_resized"], as_dict["modules_unchanged"], as_dict["modules_kept"])
    assert len(report.modules) == len(as_dict["modules"]) > 10
    for row, expected in zip(report.modules, as_dict["modules"]):
        assert (row.name, row.kind, row.shape, row.old_rank, row.new_rank, row.outcome) == (
            expected["name"], expected["kind"], expected["shape"], expected["old_rank"], expected["new_rank"],
            expected["outcome"])
    assert "Average Frobenius norm retention" in report.text()
    assert report.text(verbose=True).count("\n") > len(report.modules)


def test_plan_equals_the_cli_dry_run_and_writes_nothing(sd15, cli, tmp_path):
    run_cli(cli, "resize", sd15, "--dry-run", "--method", "sv_fro", "--param", "0.8", "--json", tmp_path / "cli.json",
            "-q")
    report = lorakit.plan(sd15, method="sv_fro", param=0.8)
    assert without_timing(report.to_dict()) == without_timing(json.loads((tmp_path / "cli.json").read_text()))
    assert report.output == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.json"]


def test_resize_bytes_equals_the_resize_on_disk(sd15, tmp_path):
    disk = lorakit.resize(sd15, tmp_path / "out.safetensors", method="sv_fro", param=0.9)
    data, memory = lorakit.resize_bytes(sd15.read_bytes(), method="sv_fro", param=0.9)
    assert data == (tmp_path / "out.safetensors").read_bytes()
    assert without_timing(memory.to_dict()) == without_timing(disk.to_dict())
    # Any buffer: bytearray and memoryview too.
    assert lorakit.resize_bytes(bytearray(sd15.read_bytes()), method="sv_fro", param=0.9)[0] == data
    assert lorakit.resize_bytes(memoryview(sd15.read_bytes()), method="sv_fro", param=0.9)[0] == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors"]


def matmul(a, b, rows, inner, cols):
    return [sum(a[i * inner + k] * b[k * cols + j] for k in range(inner)) for i in range(rows) for j in range(cols)]


def delta(tensors, stem, out_features, in_features):
    """ΔW = alpha / rank · up · down, as a loader computes it, in pure Python."""
    up_dtype, up_shape, up_raw = tensors[stem + ".lora_up.weight"]
    down_dtype, _, down_raw = tensors[stem + ".lora_down.weight"]
    rank = up_shape[1]
    alpha = st.decode_floats(*tensors[stem + ".alpha"][::2])[0]
    product = matmul(st.decode_floats(up_dtype, up_raw), st.decode_floats(down_dtype, down_raw),
                     out_features, rank, in_features)
    return [alpha / rank * x for x in product], rank


def test_trainer_round_trip_in_memory():
    """A state dict serialized in memory (as safetensors.torch.save does), resized, read back."""
    generator = random.Random(3)
    out_features, in_features, rank = 24, 20, 8
    tensors = {}
    stems = [f"lora_unet_block_{i}_proj" for i in range(3)]
    for stem in stems:
        # Columns of up scaled by a decaying spectrum, so that a lower rank keeps most of the energy.
        up = [generator.gauss(0, 1) * 0.5 ** (j % rank) for j in range(out_features * rank)]
        down = [generator.gauss(0, 1) for _ in range(rank * in_features)]
        tensors[stem + ".lora_down.weight"] = ("F32", [rank, in_features], st.encode_floats("F32", down))
        tensors[stem + ".lora_up.weight"] = ("F32", [out_features, rank], st.encode_floats("F32", up))
        tensors[stem + ".alpha"] = ("F32", [], st.encode_floats("F32", [4.0]))
    data = st.save(tensors, {"ss_network_dim": "8"})

    resized, report = lorakit.resize_bytes(data, rank=3)
    loaded, metadata = st.load(resized)
    assert metadata["ss_network_dim"] == "3"
    rows = {row.name: row for row in report.modules}
    for stem in stems:
        assert loaded[stem + ".lora_up.weight"][1] == [out_features, 3]
        assert loaded[stem + ".lora_down.weight"][1] == [3, in_features]
        before, _ = delta(tensors, stem, out_features, in_features)
        after, _ = delta(loaded, stem, out_features, in_features)
        error = math.sqrt(sum((a - b) ** 2 for a, b in zip(before, after)) / sum(a * a for a in before))
        # The reported retention says how much of ΔW the new file loses: ‖ΔW − ΔW'‖ / ‖ΔW‖ = √(1 − fro²).
        assert error == pytest.approx(math.sqrt(1 - rows[stem].fro_retained ** 2), rel=1e-4, abs=1e-6)
        assert rows[stem].new_rank == 3


def test_inspect_equals_the_cli_json(sd15, cli):
    assert lorakit.inspect(sd15) == json.loads(run_cli(cli, "inspect", sd15, "--json").stdout)
    assert lorakit.inspect(str(sd15))["base_model"]
    assert lorakit.inspect(sd15)["analysis"]["presets"][0]["options"] == "--preset high"
    header = json.loads(run_cli(cli, "inspect", sd15, "--json", "--header-only").stdout)
    assert lorakit.inspect(sd15, header_only=True) == header


def test_inspect_html_is_the_cli_page(sd15, cli, tmp_path):
    run_cli(cli, "inspect", sd15, "--html", tmp_path / "cli.html")
    page = (tmp_path / "cli.html").read_text(encoding="utf-8")
    assert lorakit.inspect_html(sd15) == page
    assert lorakit.inspect_html(sd15, tmp_path / "py.html") is None
    assert (tmp_path / "py.html").read_text(encoding="utf-8") == page
    with pytest.raises(lorakit.Error) as refused:
        lorakit.inspect_html(sd15, tmp_path / "py.html")
    assert refused.value.code == "output_exists"
    lorakit.inspect_html(sd15, tmp_path / "py.html", force=True)
    with pytest.raises(lorakit.Error) as onto_input:
        lorakit.inspect_html(sd15, sd15, force=True)
    assert onto_input.value.code == "same_file"


def test_batch_html_writes_the_overview_and_a_page_per_file(sd15, tmp_path):
    rows = lorakit.batch([str(sd15)], tmp_path / "out", preset="high", html=tmp_path / "overview.html")
    assert [row["status"] for row in rows] == ["ok"]
    overview = (tmp_path / "overview.html").read_text(encoding="utf-8")
    assert f'<a href="overview_files/{sd15.name}.html">' in overview
    assert 'id="plot-mean"' in (tmp_path / "overview_files" / f"{sd15.name}.html").read_text(encoding="utf-8")


def test_targets_and_filters_equal_the_cli(sd15, cli, tmp_path):
    """The new resize keywords are the CLI's flags: same bytes for the same options."""
    for keywords, flags in (({"target_ratio": 0.3}, ["--target-ratio", "0.3"]),
                            ({"target_size": "60kB", "allow_drop": True}, ["--target-size", "60kB", "--allow-drop"]),
                            ({"target_retention": "90%", "objective": "energy"},
                             ["--target-retention", "90%", "--objective", "energy"]),
                            ({"preset": "low", "exclude": ["attn1", "attn2"], "drop": "ff_net", "min_rank": 2},
                             ["--preset", "low", "--exclude", "attn1", "--exclude", "attn2", "--drop", "ff_net",
                              "--min-rank", "2"]),
                            ({"method": "sv_knee", "include": "lora_unet_", "max_rank": 3},
                             ["--method", "sv_knee", "--include", "lora_unet_", "--max-rank", "3"])):
        py_out, cli_out = tmp_path / "py.safetensors", tmp_path / "cli.safetensors"
        report = lorakit.resize(sd15, py_out, force=True, **keywords)
        run_cli(cli, "resize", sd15, "-o", cli_out, "--force", *flags)
        assert py_out.read_bytes() == cli_out.read_bytes(), keywords
        assert report.output_bytes == py_out.stat().st_size


def test_batch_rows_equal_the_cli_report(generate, cli, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name, seed in (("a", "1"), ("sub/b", "2")):
        path = generate("batch_" + seed, "--arch", "sd15", "--rank", "8", "--shrink", "8", "--seed", seed, "--no-te")
        (folder / (name + ".safetensors")).write_bytes(path.read_bytes())
    (folder / "notes.txt").write_text("not a LoRA")
    run_cli(cli, "batch", folder, "-r", "-o", tmp_path / "cli", "--preset", "med", "--report", tmp_path / "cli.jsonl")
    calls = []
    rows = lorakit.batch([folder], tmp_path / "py", recursive=True, preset="med",
                         progress=lambda done, total: calls.append((done, total)))
    cli_rows = [json.loads(line) for line in (tmp_path / "cli.jsonl").read_text().splitlines()]

    def comparable(row, root):
        row = dict(row)
        row.pop("seconds")
        if row["output"]:
            row["output"] = row["output"].replace(str(tmp_path / root), "OUT")
        return row

    assert sorted((comparable(r, "py") for r in rows), key=str) == sorted((comparable(r, "cli") for r in cli_rows), key=str)
    assert sorted(r["status"] for r in rows) == ["ok", "ok", "skipped"]
    for name in ("a.safetensors", "sub/b.safetensors"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    assert calls[-1] == (3, 3)


def test_python_m_lorakit_runs_the_cli(sd15, cli, tmp_path):
    args = ["resize", str(sd15), "-o", str(tmp_path / "m.safetensors"), "--rank", "4", "-q"]
    module = subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True)
    assert module.returncode == 0, module.stderr
    run_cli(cli, "resize", sd15, "-o", tmp_path / "cli.safetensors", "--rank", "4", "-q")
    assert (tmp_path / "m.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    refused = subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr == run_cli(cli, *args, check=False).stderr
    assert subprocess.run([sys.executable, "-m", "lorakit", "--version"], capture_output=True,
                          text=True).stdout == run_cli(cli, "--version").stdout
