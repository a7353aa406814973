# Type stubs for lorakit (the extension lorakit._lorakit). Keyword options are the CLI's flags with
# '_' for '-', with the CLI's defaults (in the comments); None means "not given". A test checks these
# option types against the binding's tables (RESIZE_OPTIONS, BATCH_OPTIONS).
import os
from typing import Any, Callable, Iterable, Literal, Optional, Tuple, TypedDict, Union

from typing_extensions import Unpack

__version__: str

StrPath = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int], object]
Method = Literal["fixed", "sv_ratio", "sv_fro", "sv_cumulative", "sv_knee"]
Patterns = Union[str, list[str], tuple[str, ...]]
DType = Literal["keep", "fp16", "bf16", "fp32", "float16", "bfloat16", "float32", "float", "f16", "f32", "None"]

ERROR_CODES: Tuple[str, ...]
RESIZE_OPTIONS: Tuple[str, ...]
BATCH_OPTIONS: Tuple[str, ...]
# `--preset NAME` as the resize keywords it stands for, e.g. {"method": "sv_fro", "param": 0.95}.
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
    outcome: Literal["resized", "unchanged", "kept", "excluded", "dropped"]
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

class _RankOptions(TypedDict, total=False):
    preset: Optional[Literal["high", "med", "low"]]  # see PRESETS
    method: Optional[Method]  # None: fixed, with rank
    param: Optional[float]  # sv_fro / sv_cumulative: 0 < P <= 1; sv_ratio: P >= 1; sv_knee: none
    rank: Optional[int]  # fixed rank, or the cap of a method or target (default: each module's own)
    conv_rank: Optional[int]  # the same for modules with a kernel (default: rank)
    target_size: Union[str, int, None]  # "50MB", "800MiB" or bytes: the output file at most this
    target_ratio: Optional[float]  # 0 < R <= 1 of the input's size
    target_retention: Union[str, float, None]  # 0.95, "95" or "95%": the smallest file reaching it
    objective: Optional[Literal["mean", "energy"]]  # what a target keeps (default "mean")
    allow_drop: bool  # False: a target may remove whole modules when True
    include: Optional[Patterns]  # regexes: resize only matching modules
    exclude: Optional[Patterns]  # regexes: matching modules are written back unresized
    drop: Optional[Patterns]  # regexes: matching modules are removed
    min_rank: Optional[int]
    max_rank: Optional[int]
    minimal: bool  # False
    dtype: DType  # "keep"
    threads: int  # 0 = all cores
    to_lora: bool  # False
    keep_lycoris: bool  # False
    device: Optional[str]  # accepted and ignored, with a note in the report
    force: bool  # False: an existing output is refused (batch: redo outputs that exist)
    progress: Optional[Progress]  # progress(done, total), on the calling thread

class ResizeOptions(_RankOptions, total=False):
    pass

class BatchOptions(_RankOptions, total=False):
    recursive: bool  # False
    suffix: Optional[str]
    in_place: bool  # False
    no_backup: bool  # False
    min_retention: Union[str, float, None]  # 0.87, "87" or "87%"
    min_saving: Union[str, float, None]  # percent: 20 or "20%"
    on_discard: Literal["skip", "copy"]  # "skip"
    jobs: int  # 1
    max_memory: Union[str, int, None]  # "4G", or bytes
    nice: bool  # False
    report: Optional[StrPath]  # FILE.csv or FILE.jsonl
    html: Optional[StrPath]  # overview page FILE.html, per-file pages in FILE_files/
    shard: Optional[str]  # "I/N" or "auto"

def resize(input: StrPath, output: StrPath, **options: Unpack[ResizeOptions]) -> Report: ...
def plan(input: StrPath, **options: Unpack[ResizeOptions]) -> Report:
    """`lorakit resize --dry-run`: nothing is written."""

def resize_bytes(data: Union[bytes, bytearray, memoryview], **options: Unpack[ResizeOptions]) -> Tuple[bytes, Report]:
    """A whole safetensors file in memory in, the resized file's bytes out (no file is touched)."""

def inspect(path: StrPath, *, header_only: bool = False, threads: int = 0) -> dict[str, Any]:
    """`lorakit inspect --json` as a dict: with the analysis ("analysis": sizes and retention of presets and
    targets, curves, heat maps, dead weight, per-module ranks), or only the header's facts."""

def inspect_text(path: StrPath, *, header_only: bool = False, threads: int = 0) -> str:
    """`lorakit inspect`'s text."""
def inspect_html(path: StrPath, output: Optional[StrPath] = None, *, force: bool = False,
                 threads: int = 0) -> Optional[str]:
    """`lorakit inspect --html OUTPUT`: the self-contained page, written atomically (an existing file only
    with force=True); with output None, the page is returned instead."""

def batch(
    inputs: Union[StrPath, Iterable[StrPath]], output_dir: StrPath, **options: Unpack[BatchOptions]
) -> list[dict[str, Any]]:
    """`lorakit batch`: one row per file, as in its --report FILE.jsonl."""
