"""``python3 -m lorakit ARGS`` (and the ``lorakit`` console script): the lorakit CLI itself.

The package ships the C++ binary it was built with (lorakit/bin/lorakit); this replaces the Python
process by it, so arguments, output, signals and exit codes are exactly the CLI's.
"""
import os
import sys
from pathlib import Path


def cli_path() -> Path:
    return Path(__file__).resolve().parent / "bin" / "lorakit"


def main() -> None:
    binary = cli_path()
    os.execv(binary, ["lorakit", *sys.argv[1:]])


if __name__ == "__main__":
    main()
