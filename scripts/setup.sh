#!/usr/bin/env bash
# Installs the Debian packages lorakit builds with, skipping those already present.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libeigen3-dev nlohmann-json3-dev libcli11-dev
          libfmt-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev python3 time gawk
          # OpenBLAS's LAPACK (the LoHa spectra), linked statically; libgfortran-12-dev is its Fortran runtime.
          libopenblas-pthread-dev liblapacke-dev libgfortran-12-dev
          qemu-user  # the release binary's test runs it on emulated older CPUs
          chromium   # the HTML reports' test renders them headless
          # The Python package (python/) and its tests: built for /usr/bin/python3; the wheel of `make python`.
          python3-dev pybind11-dev python3-pytest python3-setuptools python3-wheel python3-wheel-whl python3-pip python3-venv
          # sanitizer builds and libFuzzer (make test, test-sanitize, fuzz): clang, its runtimes, symbolizer
          clang libclang-rt-14-dev llvm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
