"""lorakit: resize diffusion LoRA files exactly, in factor space, on a CPU.

A thin layer over the C++ library (lorakit._lorakit). The options are the CLI's flags with '_' for
'-' (``conv_rank`` is ``--conv-rank``), with the same defaults and the same validation; see
``lorakit/__init__.pyi`` for the signatures, and README.md ("Python") for the semantics.
"""
from ._lorakit import (
    BATCH_OPTIONS,
    ERROR_CODES,
    PRESETS,
    RESIZE_OPTIONS,
    Error,
    ModuleReport,
    Report,
    batch,
    inspect,
    inspect_html,
    inspect_text,
    plan,
    resize,
    resize_bytes,
)

__version__ = "0.1.0"

__all__ = [
    "BATCH_OPTIONS",
    "ERROR_CODES",
    "PRESETS",
    "RESIZE_OPTIONS",
    "Error",
    "ModuleReport",
    "Report",
    "batch",
    "inspect",
    "inspect_html",
    "inspect_text",
    "plan",
    "resize",
    "resize_bytes",
]
