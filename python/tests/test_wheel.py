"""The wheel (`make python`: pip wheel --no-build-isolation --no-index, in the project's build folder)
installs offline into a fresh venv, which then imports lorakit, runs `python -m lorakit` and the
`lorakit` command. Slow parts are pip's own (~10 s): the build folder is reused, nothing is compiled."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    build_dir = os.environ.get("LORAKIT_BUILD_DIR")
    if not build_dir:
        pytest.skip("LORAKIT_BUILD_DIR is not set (ctest sets it)")
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps",
                    "-q", "-w", str(dist), str(SOURCE_DIR / "python")],
                   check=True, env={**os.environ, "LORAKIT_BUILD_DIR": build_dir}, cwd=tmp_path_factory.getbasetemp())
    (built,) = dist.glob("lorakit-0.1.0-*.whl")
    return built


def test_wheel_holds_the_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    for name in ("lorakit/__init__.py", "lorakit/__init__.pyi", "lorakit/py.typed", "lorakit/__main__.py",
                 "lorakit/bin/lorakit"):
        assert name in names
    assert any(n.startswith("lorakit/_lorakit.") and n.endswith(".so") for n in names)
    assert modes["lorakit/bin/lorakit"] & 0o111


def test_wheel_installs_into_a_fresh_venv(wheel, tmp_path, sd15):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-index", "-q", str(wheel)], check=True)
    code = ("import lorakit, sys; r = lorakit.plan(sys.argv[1], rank=4); "
            "print(lorakit.__file__); print(r.output_bytes)")
    run = subprocess.run([str(python), "-c", code, str(sd15)], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    location, size = run.stdout.split()
    assert location.startswith(str(venv))
    assert int(size) > 0
    for command in ([str(python), "-m", "lorakit", "--version"], [str(venv / "bin" / "lorakit"), "--version"]):
        assert subprocess.run(command, capture_output=True, text=True, check=True).stdout.startswith("lorakit ")
