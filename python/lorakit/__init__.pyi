# Type stubs for lorakit (the extension lorakit._lorakit). Keyword options are the CLI's flags with
# '_' for '-', with the CLI's defaults; None means "not given". A test checks these signatures against
# the binding's option tables (RESIZE_OPTIONS, BATCH_OPTIONS).
import os
from typing import Any, Callable, Iterable, Literal, Optional, Tuple, Union

__version__: str

StrPath = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int], object]
Method = Literal["fixed", "sv_ratio", "sv_fro", "sv_cumulative"]
DType = Literal["keep", "fp16", "bf16", "fp32", "float16", "bfloat16", "float32", "float", "f16", "f32", "None"]

ERROR_CODES: Tuple[str, ...]
RESIZE_OPTIONS: Tuple[str, ...]
BATCH_OPTIONS: Tuple[str, ...]
# `lorakit batch --preset NAME` as the resize keywords it stands for, e.g. {"method": "sv_fro", "param": 0.95}.
PRESETS: dict[str, dict[str, Any]]

class Error(Exception):
    """A lorakit failure: `code` names the failure mode (one of ERROR_CODES); str() is the CLI's message."""
    code: str

class ModuleReport:
    name: str
    kind: str
    family: str
    shape: list[int]
    old_rank: int
    new_rank: int
    outcome: Literal["resized", "unchanged", "kept"]
    sum_retained: float
    fro_retained: float
    max_ratio: float
    energy: float
    old_alpha: Optional[float]
    new_alpha: Optional[float]
    nonfinite: int
    note: str

class Report:
    input: str
    output: str
    input_bytes: int
    output_bytes: int
    modules: list[ModuleReport]
    passthrough: list[str]
    resized: int
    unchanged: int
    kept: int
    average_fro: float
    std_fro: float
    energy_weighted_fro: float
    nonfinite: int
    seconds: float
    notes: list[str]
    def to_dict(self) -> dict[str, Any]: ...
    def text(self, verbose: bool = False) -> str: ...

def resize(
    input: StrPath,
    output: StrPath,
    *,
    preset: None = None,
    method: Optional[Method] = None,
    param: Optional[float] = None,
    rank: Optional[int] = None,
    conv_rank: Optional[int] = None,
    target_size: None = None,
    minimal: bool = False,
    dtype: DType = "keep",
    threads: int = 0,
    to_lora: bool = False,
    keep_lycoris: bool = False,
    device: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> Report: ...

def plan(
    input: StrPath,
    *,
    preset: None = None,
    method: Optional[Method] = None,
    param: Optional[float] = None,
    rank: Optional[int] = None,
    conv_rank: Optional[int] = None,
    target_size: None = None,
    minimal: bool = False,
    dtype: DType = "keep",
    threads: int = 0,
    to_lora: bool = False,
    keep_lycoris: bool = False,
    device: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> Report: ...

def resize_bytes(
    data: Union[bytes, bytearray, memoryview],
    *,
    preset: None = None,
    method: Optional[Method] = None,
    param: Optional[float] = None,
    rank: Optional[int] = None,
    conv_rank: Optional[int] = None,
    target_size: None = None,
    minimal: bool = False,
    dtype: DType = "keep",
    threads: int = 0,
    to_lora: bool = False,
    keep_lycoris: bool = False,
    device: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> Tuple[bytes, Report]: ...

def inspect(path: StrPath) -> dict[str, Any]:
    """`lorakit inspect --json` as a dict."""

def inspect_text(path: StrPath) -> str:
    """`lorakit inspect`'s text."""

def batch(
    inputs: Union[StrPath, Iterable[StrPath]],
    output_dir: StrPath,
    *,
    recursive: bool = False,
    suffix: Optional[str] = None,
    in_place: bool = False,
    no_backup: bool = False,
    preset: Optional[Literal["high", "med", "low"]] = None,
    min_retention: Union[str, float, None] = None,
    min_saving: Union[str, float, None] = None,
    on_discard: Literal["skip", "copy"] = "skip",
    jobs: int = 1,
    max_memory: Union[str, int, None] = None,
    nice: bool = False,
    report: Optional[StrPath] = None,
    shard: Optional[str] = None,
    method: Optional[Method] = None,
    param: Optional[float] = None,
    rank: Optional[int] = None,
    conv_rank: Optional[int] = None,
    target_size: None = None,
    minimal: bool = False,
    dtype: DType = "keep",
    threads: int = 0,
    to_lora: bool = False,
    keep_lycoris: bool = False,
    device: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> list[dict[str, Any]]: ...
