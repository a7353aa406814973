"""Builds the lorakit package with the project's CMake build, offline (no downloads: pybind11, the
compiler and every library come from the system, see scripts/setup.sh).

    pip install ./python --no-build-isolation --no-index     # into the active environment
    make python                                              # a wheel in build/dist (Debian's python3)

The extension is built for the interpreter that runs this (-DPython_EXECUTABLE=sys.executable). CMake
builds in LORAKIT_BUILD_DIR when set (`make python` passes its own build folder, so nothing is
compiled twice), else in a folder of its own under setuptools' build_temp. CMAKE_ARGS adds flags,
e.g. CMAKE_ARGS=-DLORAKIT_NATIVE=OFF for a wheel that runs on other x86-64 machines.
"""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE_DIR = Path(__file__).resolve().parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("LORAKIT_BUILD_DIR") or Path(self.build_temp).resolve() / "cmake")
        configure = ["cmake", "-S", str(SOURCE_DIR), "-B", str(build_dir), "-G", "Ninja",
                     "-DLORAKIT_PYTHON=ON", f"-DPython_EXECUTABLE={sys.executable}"]
        if not (build_dir / "CMakeCache.txt").exists():  # a fresh folder: only what the package needs
            configure += ["-DCMAKE_BUILD_TYPE=Release", "-DLORAKIT_BUILD_TESTS=OFF", "-DLORAKIT_BUILD_BENCH=OFF"]
        configure += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "lorakit_python",
                        "-j", str(os.cpu_count() or 1)], check=True)
        staged = build_dir / "python" / "lorakit"
        extension = Path(self.get_ext_fullpath(ext.name))
        extension.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged / extension.name, extension)
        (extension.parent / "bin").mkdir(exist_ok=True)
        shutil.copy2(staged / "bin" / "lorakit", extension.parent / "bin" / "lorakit")


setup(
    name="lorakit",
    version="0.1.0",
    description="Resize diffusion LoRA files exactly, in factor space, on a CPU",
    python_requires=">=3.9",
    packages=["lorakit"],
    package_data={"lorakit": ["*.pyi", "py.typed"]},
    ext_modules=[Extension("lorakit._lorakit", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    entry_points={"console_scripts": ["lorakit = lorakit.__main__:main"]},
    zip_safe=False,
)
