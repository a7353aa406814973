"""A stand-in for ComfyUI's folder_paths module with the behaviour the nodes rely on, as ComfyUI's
folder_paths.py implements it: folder_names_and_paths maps a kind to ([folders], {extensions});
get_filename_list lists files below every folder (relative paths, recursive, '.git' skipped, filtered by
extension, sorted); get_full_path first turns the name into a relative path (os.path.relpath of
'/' + name, so '../x' becomes 'x') and returns the first folder's existing file; get_folder_paths returns
a copy of the folder list. Tests point it at temp folders with use_loras_folders()."""
import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
folder_names_and_paths = {}


def use_loras_folders(*folders):
    folder_names_and_paths["loras"] = ([str(f) for f in folders], supported_pt_extensions)


def get_folder_paths(folder_name):
    return folder_names_and_paths[folder_name][0][:]


def _files_below(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files]
    return found


def get_filename_list(folder_name):
    folders, extensions = folder_names_and_paths[folder_name]
    names = set()
    for folder in folders:
        names.update(f for f in _files_below(folder) if not extensions or os.path.splitext(f)[-1].lower() in extensions)
    return sorted(names)


def get_full_path(folder_name, filename):
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for folder in folder_names_and_paths[folder_name][0]:
        full_path = os.path.join(folder, filename)
        if os.path.isfile(full_path):
            return full_path
    return None
