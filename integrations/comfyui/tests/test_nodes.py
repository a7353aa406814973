"""The ComfyUI nodes, loaded as ComfyUI loads a custom node folder, against a stand-in folder_paths
(this folder) pointed at temp loras folders."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the stand-in folder_paths
import folder_paths  # noqa: E402
import lorakit  # noqa: E402


def load_custom_node_folder():
    spec = importlib.util.spec_from_file_location("lorakit_comfyui", HERE.parent / "__init__.py",
                                                  submodule_search_locations=[str(HERE.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


NODES = load_custom_node_folder()
RESIZE = NODES.NODE_CLASS_MAPPINGS["LorakitResizeLoRA"]
INSPECT = NODES.NODE_CLASS_MAPPINGS["LorakitInspectLoRA"]


@pytest.fixture(scope="module")
def lora_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "lora.safetensors"
    subprocess.run([str(Path(__import__("os").environ["LORAKIT_GEN"])), "--arch", "sd15", "--rank", "8", "--shrink",
                    "8", "--seed", "4", "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path.read_bytes()


@pytest.fixture
def loras(tmp_path, lora_bytes):
    """A loras folder with one LoRA at the top and one in a sub-folder, a second (empty) loras folder,
    and a LoRA outside both."""
    root = tmp_path / "models" / "loras"
    (root / "styles" / "ink").mkdir(parents=True)
    (root / "top.safetensors").write_bytes(lora_bytes)
    (root / "styles" / "ink" / "deep.safetensors").write_bytes(lora_bytes)
    (root / "readme.txt").write_text("not listed")
    (tmp_path / "models" / "outside.safetensors").write_bytes(lora_bytes)
    extra = tmp_path / "extra_loras"
    extra.mkdir()
    folder_paths.use_loras_folders(root, extra)
    return root


def resize(lora_name, **overrides):
    arguments = dict(lora_name=lora_name, preset="high", method="sv_fro", param=0.9, rank=0, conv_rank=0,
                     target_size="", dtype="keep", output_name="", overwrite=False)
    arguments.update(overrides)
    node = RESIZE()
    return getattr(node, RESIZE.FUNCTION)(**arguments)


def test_node_conventions(loras):
    assert NODES.NODE_DISPLAY_NAME_MAPPINGS == {"LorakitResizeLoRA": "Resize LoRA (lorakit)",
                                                "LorakitInspectLoRA": "Inspect LoRA (lorakit)"}
    for node in (RESIZE, INSPECT):
        inputs = node.INPUT_TYPES()["required"]
        assert inputs["lora_name"][0] == ["styles/ink/deep.safetensors", "top.safetensors"]
        assert callable(getattr(node, node.FUNCTION))
        assert node.CATEGORY == "loaders/lorakit"
        assert len(node.RETURN_TYPES) == len(node.RETURN_NAMES)
    inputs = RESIZE.INPUT_TYPES()["required"]
    assert inputs["preset"][0] == ["high", "med", "low", "custom"]
    assert set(inputs) == set(RESIZE.resize.__code__.co_varnames[1:RESIZE.resize.__code__.co_argcount])
    assert RESIZE.OUTPUT_NODE


def test_resize_writes_beside_the_input_with_the_presets_name(loras):
    report, name = resize("styles/ink/deep.safetensors")
    assert name == "styles/ink/deep_high.safetensors"
    written = loras / name
    expected = lorakit.resize(loras / "styles/ink/deep.safetensors", loras / "check.safetensors", preset="high")
    assert written.read_bytes() == (loras / "check.safetensors").read_bytes()
    assert "Average Frobenius norm retention" in report
    assert report.splitlines()[1:-1] == expected.text().splitlines()[1:-1]  # all but paths and time
    assert name in folder_paths.get_filename_list("loras")


def test_custom_method_fixed_rank_and_output_name(loras):
    _, name = resize("top.safetensors", preset="custom", method="sv_ratio", param=4.0)
    assert name == "top_sv_ratio4.safetensors"
    _, name = resize("top.safetensors", preset="custom", method="fixed", rank=4, output_name="small/top4")
    assert name == "small/top4.safetensors"
    rows = lorakit.plan(loras / name, rank=64).modules
    assert max(row.old_rank for row in rows) == 4


def test_target_size_replaces_the_preset(loras):
    input_bytes = (loras / "top.safetensors").stat().st_size
    target = input_bytes // 3
    report, name = resize("top.safetensors", target_size=f"{target}B")
    assert name == f"top_{target}B.safetensors"
    assert (loras / name).stat().st_size <= target
    assert f"target: at most" in report
    with pytest.raises(lorakit.Error) as raised:
        resize("top.safetensors", target_size="1kB", output_name="tiny")
    assert raised.value.code == "target_unreachable"
    assert not (loras / "tiny.safetensors").exists()


def test_refuses_to_overwrite_unless_asked(loras):
    resize("top.safetensors")
    before = (loras / "top_high.safetensors").read_bytes()
    with pytest.raises(lorakit.Error) as raised:
        resize("top.safetensors", preset="low", output_name="top_high")
    assert raised.value.code == "output_exists"
    assert (loras / "top_high.safetensors").read_bytes() == before
    resize("top.safetensors", preset="low", output_name="top_high", overwrite=True)
    assert (loras / "top_high.safetensors").read_bytes() != before


@pytest.mark.parametrize("name", ["../outside.safetensors", "styles/../../outside.safetensors",
                                  "/etc/passwd", "..\\outside.safetensors"])
def test_names_that_leave_the_loras_folder_are_refused(loras, name):
    with pytest.raises(ValueError, match="inside the loras folder"):
        resize(name)
    with pytest.raises(ValueError, match="inside the loras folder"):
        getattr(INSPECT(), INSPECT.FUNCTION)(name)
    # ComfyUI's own get_full_path would have quietly mapped "../x" to "<loras>/x"; nothing was read or written.
    assert sorted(p.name for p in loras.parent.iterdir()) == ["loras", "outside.safetensors"]


@pytest.mark.parametrize("output_name", ["../escaped", "/tmp/escaped", "styles/../../escaped"])
def test_output_names_that_leave_the_loras_folder_are_refused(loras, output_name):
    with pytest.raises(ValueError, match="inside the loras folder"):
        resize("top.safetensors", output_name=output_name)
    assert not list(loras.parent.glob("escaped*")) and not Path("/tmp/escaped.safetensors").exists()


def test_missing_lora_is_reported(loras):
    with pytest.raises(FileNotFoundError):
        resize("nothere.safetensors")


def test_inspect_returns_the_cli_summary(loras):
    (summary,) = getattr(INSPECT(), INSPECT.FUNCTION)("styles/ink/deep.safetensors")
    assert summary == lorakit.inspect_text(loras / "styles/ink/deep.safetensors")
    assert "Families      kohya" in summary
    assert json.dumps(lorakit.inspect(loras / "top.safetensors"))
