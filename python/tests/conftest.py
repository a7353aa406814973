"""Shared fixtures: the C++ CLI and the LoRA generator of the same build (ctest passes their paths),
and small LoRA files made with them."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # safetensors_py


def _tool(variable):
    path = os.environ.get(variable)
    if not path:
        pytest.exit(f"{variable} is not set: run these tests through ctest (python_pytest)", returncode=2)
    return Path(path)


@pytest.fixture(scope="session")
def cli():
    return _tool("LORAKIT_CLI")


@pytest.fixture(scope="session")
def generate(tmp_path_factory):
    """generate(name, *lorakit-gen flags) → path of a generated LoRA (made once per session)."""
    gen = _tool("LORAKIT_GEN")
    folder = tmp_path_factory.mktemp("generated")
    made = {}

    def make(name, *flags):
        if name not in made:
            path = folder / f"{name}.safetensors"
            subprocess.run([str(gen), *flags, "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
            made[name] = path
        return made[name]

    return make


@pytest.fixture(scope="session")
def sd15(generate):
    """An SD1.5 kohya LoRA with conv layers, small (widths / 4), fp16, with ss_* metadata (sshs hashes)."""
    return generate("sd15", "--arch", "sd15", "--rank", "16", "--conv", "--shrink", "4", "--seed", "5")


def run_cli(cli, *args, check=True):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, check=check)
