"""ComfyUI nodes: "Resize LoRA (lorakit)" and "Inspect LoRA (lorakit)".

LoRAs are named as ComfyUI names them: paths relative to a folder of the "loras" list, as
folder_paths.get_filename_list("loras") gives them. Names that leave that folder are refused.
"""
import os

import folder_paths

try:
    import lorakit
except ImportError as error:  # the nodes run in ComfyUI's own Python, which needs the package
    raise ImportError(
        "lorakit is not installed in ComfyUI's Python: run `<ComfyUI's python> -m pip install "
        "<lorakit>/python --no-build-isolation --no-index`, then restart ComfyUI") from error

CATEGORY = "loaders/lorakit"
CUSTOM = "custom"
METHODS = ["sv_fro", "sv_ratio", "sv_cumulative", "sv_knee", "fixed"]
DTYPES = ["keep", "fp16", "bf16", "fp32"]


def _parts(name):
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _checked_relative(name, what):
    """`name` as a path inside a loras folder, or ValueError when it is absolute or climbs out with '..'."""
    if not name or os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in _parts(name):
        raise ValueError(f"{what} '{name}' is not a name inside the loras folder")
    return os.path.join(*_parts(name))


def resolve_lora(name):
    """(loras folder, full path) of a LoRA that ComfyUI lists."""
    relative = _checked_relative(name, "LoRA")
    full_path = folder_paths.get_full_path("loras", relative)
    if full_path is None:
        raise FileNotFoundError(f"LoRA '{name}' not found in the loras folders")
    for folder in folder_paths.get_folder_paths("loras"):
        inside = os.path.normpath(os.path.join(folder, relative))
        if os.path.normpath(full_path) == inside:
            return folder, full_path
    raise ValueError(f"LoRA '{name}' is not inside a loras folder")


def default_output_name(lora_name, label):
    stem, _ = os.path.splitext(lora_name)
    return f"{stem}_{label}.safetensors"


def _options(preset, method, param, rank, conv_rank, target_size):
    """The lorakit.resize keywords and the label of the default output name."""
    target_size = target_size.strip()
    if target_size:
        options = {"target_size": target_size}
        label = target_size.replace(" ", "")
    elif preset != CUSTOM:
        options = {"preset": preset}
        label = preset
    elif method == "fixed":
        options = {}
        label = f"r{rank}"
    elif method == "sv_knee":
        options = {"method": method}
        label = method
    else:
        options = {"method": method, "param": param}
        label = f"{method}{param:g}"
    if rank > 0:
        options["rank"] = rank
    if conv_rank > 0:
        options["conv_rank"] = conv_rank
    return options, label


class ResizeLoRA:
    """Writes a resized copy of a LoRA into the same loras folder and returns the report."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "lora_name": (folder_paths.get_filename_list("loras"),),
                "preset": (list(lorakit.PRESETS) + [CUSTOM], {"default": "high"}),
                "method": (METHODS, {"default": "sv_fro"}),
                "param": ("FLOAT", {"default": 0.9, "min": 0.0, "max": 1000.0, "step": 0.01}),
                "rank": ("INT", {"default": 0, "min": 0, "max": 4096,
                                 "tooltip": "fixed rank, or the cap of a method; 0: each module's own"}),
                "conv_rank": ("INT", {"default": 0, "min": 0, "max": 4096, "tooltip": "0: the same as rank"}),
                "target_size": ("STRING", {"default": "",
                                           "tooltip": "e.g. 50MB: the smallest loss within that size (replaces "
                                                      "preset and method); empty: use the preset or method"}),
                "dtype": (DTYPES, {"default": "keep"}),
                "output_name": ("STRING", {"default": "",
                                           "tooltip": "empty: <name>_<preset>.safetensors beside the input"}),
                "overwrite": ("BOOLEAN", {"default": False}),
            }
        }

    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("report", "lora_name")
    FUNCTION = "resize"
    CATEGORY = CATEGORY
    OUTPUT_NODE = True

    def resize(self, lora_name, preset, method, param, rank, conv_rank, target_size, dtype, output_name, overwrite):
        folder, input_path = resolve_lora(lora_name)
        options, label = _options(preset, method, param, rank, conv_rank, target_size)
        name = output_name.strip() or default_output_name(lora_name, label)
        if not name.endswith(".safetensors"):
            name += ".safetensors"
        relative = _checked_relative(name, "output name")
        output_path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(output_path), exist_ok=True)
        report = lorakit.resize(input_path, output_path, dtype=dtype, force=overwrite, **options)
        return (report.text(), relative.replace(os.sep, "/"))


class InspectLoRA:
    """The `lorakit inspect` summary of a LoRA: families, base model, kinds, ranks, alphas, dtypes."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"lora_name": (folder_paths.get_filename_list("loras"),)}}

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("summary",)
    FUNCTION = "inspect"
    CATEGORY = CATEGORY

    def inspect(self, lora_name):
        _, path = resolve_lora(lora_name)
        return (lorakit.inspect_text(path),)


NODE_CLASS_MAPPINGS = {"LorakitResizeLoRA": ResizeLoRA, "LorakitInspectLoRA": InspectLoRA}
NODE_DISPLAY_NAME_MAPPINGS = {"LorakitResizeLoRA": "Resize LoRA (lorakit)", "LorakitInspectLoRA": "Inspect LoRA (lorakit)"}
