"""Every failure mode reachable from Python raises lorakit.Error with the CLI's code name and message."""
import os
import re
import resource
import signal
import subprocess
import sys

import pytest

import lorakit
import safetensors_py as st
from conftest import run_cli

U8 = '{"dtype":"U8","shape":[4],"data_offsets":[0,4]}'


def one_tensor(entry, data=b"ZZZZ"):
    return st.raw_file('{"t":' + entry + "}", data)


def lora(down_shape=(2, 4), up_shape=(3, 2), dtype="F32", alpha=None, up=True):
    tensors = {"lora_unet_x.lora_down.weight": (dtype, list(down_shape), bytes(4 * down_shape[0] * down_shape[1]))}
    if up:
        tensors["lora_unet_x.lora_up.weight"] = ("F32", list(up_shape), bytes(4 * up_shape[0] * up_shape[1]))
    if alpha is not None:
        tensors["lora_unet_x.alpha"] = alpha
    return st.save(tensors)


# code → the bytes of an input file that fails with it (resized with --rank 1).
BAD_FILES = {
    "file_too_short": b"abc",
    "header_too_large": (100_000_001).to_bytes(8, "little") + b"{}",
    "header_beyond_eof": (100).to_bytes(8, "little") + b"{}",
    "header_invalid_utf8": st.raw_file(b'{"a\xff":{}}'),
    "header_invalid_json": st.raw_file("{"),
    "header_not_object": st.raw_file("[]"),
    "duplicate_key": st.raw_file('{"t":' + U8 + ',"t":' + U8 + "}", b"ZZZZ"),
    "metadata_invalid": st.raw_file('{"__metadata__":{"k":1}}'),
    "tensor_entry_invalid": one_tensor('{"dtype":"U8","shape":[4]}'),
    "unknown_dtype": one_tensor('{"dtype":"F17","shape":[4],"data_offsets":[0,4]}'),
    "invalid_shape": one_tensor('{"dtype":"U8","shape":[-1],"data_offsets":[0,4]}'),
    "invalid_offsets": one_tensor('{"dtype":"U8","shape":[4],"data_offsets":[4,0]}'),
    "size_mismatch": one_tensor('{"dtype":"F32","shape":[2],"data_offsets":[0,4]}'),
    "data_not_contiguous": one_tensor('{"dtype":"U8","shape":[4],"data_offsets":[4,8]}', b"Z" * 8),
    "data_size_mismatch": one_tensor(U8, b"Z" * 8),
    "adapter_incomplete": lora(up=False),
    "adapter_shape_mismatch": lora(up_shape=(3, 5)),
    "adapter_dtype_unsupported": lora(dtype="I32"),
    "adapter_invalid_alpha": lora(alpha=("F32", [2], bytes(8))),
    "not_an_adapter": one_tensor(U8),
    # The early cloneofsimo/lora format: no loader of today reads it.
    "adapter_format_unsupported": st.save({"unet:0:up": ("F32", [3, 2], bytes(24)),
                                           "unet:0:down": ("F32", [2, 4], bytes(32))}),
}

# Codes Python cannot reach through an input or a request: io_read needs a file that shrinks while it is
# read; numeric_failure and internal are guards against bugs; interrupted is raised inside the library
# when Python cancels, and Python then gets KeyboardInterrupt (or the callback's own exception) instead.
UNREACHABLE = {"io_read", "numeric_failure", "internal", "interrupted"}
REQUEST_CODES = {"invalid_argument", "io_open", "io_write", "output_exists", "same_file", "target_unreachable"}


def test_the_cases_cover_every_code():
    assert set(lorakit.ERROR_CODES) == set(BAD_FILES) | UNREACHABLE | REQUEST_CODES


def temp_names_alike(message):
    """Temp file names have a random part: ".out.safetensors.<12 hex>.tmp"."""
    return re.sub(r"\.[0-9a-f]{12}\.tmp", ".RANDOM.tmp", message)


def expect_same_as_cli(cli, code, call, *cli_args):
    with pytest.raises(lorakit.Error) as raised:
        call()
    assert raised.value.code == code
    cli_run = run_cli(cli, *cli_args, check=False)
    assert temp_names_alike(cli_run.stderr) == temp_names_alike(f"lorakit: error: {raised.value}\n")
    assert cli_run.returncode == (2 if code in {"invalid_argument", "output_exists", "same_file"} else 1)
    return raised.value


@pytest.mark.parametrize("code", sorted(BAD_FILES))
def test_bad_input_file(cli, tmp_path, code):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(BAD_FILES[code])
    out = tmp_path / "out.safetensors"
    expect_same_as_cli(cli, code, lambda: lorakit.resize(path, out, rank=1), "resize", path, "-o", out, "--rank", "1")
    # In memory: the same code, the message names the image instead of the file.
    with pytest.raises(lorakit.Error) as raised:
        lorakit.resize_bytes(BAD_FILES[code], rank=1)
    assert raised.value.code == code
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]


def test_invalid_arguments(sd15, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    expect_same_as_cli(cli, "invalid_argument", lambda: lorakit.resize(sd15, out, method="sv_fro"),
                       "resize", sd15, "-o", out, "--method", "sv_fro")
    expect_same_as_cli(cli, "invalid_argument", lambda: lorakit.resize(sd15, out, method="sv_fro", param=1.5),
                       "resize", sd15, "-o", out, "--method", "sv_fro", "--param", "1.5")
    expect_same_as_cli(cli, "invalid_argument", lambda: lorakit.resize(sd15, out),
                       "resize", sd15, "-o", out)
    expect_same_as_cli(cli, "invalid_argument", lambda: lorakit.resize(sd15, out, rank=4, dtype="fp8"),
                       "resize", sd15, "-o", out, "--rank", "4", "--dtype", "fp8")
    expect_same_as_cli(cli, "invalid_argument", lambda: lorakit.resize(sd15, out, rank=4, to_lora=True, keep_lycoris=True),
                       "resize", sd15, "-o", out, "--rank", "4", "--to-lora", "--keep-lycoris")
    for bad in ({"rank": -3}, {"rank": 0}, {"rank": 2.5}, {"rank": True}, {"minimal": 1}, {"param": "0.9"},
                {"method": 3}, {"threads": 5000}, {"progress": 3}):
        with pytest.raises(lorakit.Error) as raised:
            lorakit.resize(sd15, out, **{"method": "sv_fro", "param": 0.9, **bad})
        assert raised.value.code == "invalid_argument"
        assert list(bad)[0] in str(raised.value)
    with pytest.raises(TypeError, match="new_rank"):
        lorakit.resize(sd15, out, new_rank=4)
    for bad, message in (({"preset": "best"}, "preset"), ({"target_size": "50%"}, "--target-size"),
                         ({"include": 3}, "include"), ({"target_ratio": 0.5, "method": "sv_fro", "param": 0.9}, "target")):
        with pytest.raises(lorakit.Error) as raised:
            lorakit.resize(sd15, out, **bad)
        assert raised.value.code == "invalid_argument"
        assert message in str(raised.value)
    assert not out.exists()


def test_refused_requests(sd15, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    expect_same_as_cli(cli, "output_exists", lambda: lorakit.resize(sd15, out, rank=4),
                       "resize", sd15, "-o", out, "--rank", "4")
    assert out.read_bytes() == b"precious"
    lorakit.resize(sd15, out, rank=4, force=True)
    assert out.stat().st_size > 8
    expect_same_as_cli(cli, "same_file", lambda: lorakit.resize(sd15, sd15, rank=4, force=True),
                       "resize", sd15, "-o", sd15, "--rank", "4", "--force")
    expect_same_as_cli(cli, "target_unreachable",
                       lambda: lorakit.resize(sd15, out, target_size="1kB", force=True),
                       "resize", sd15, "-o", out, "--target-size", "1kB", "--force")
    missing = tmp_path / "missing.safetensors"
    expect_same_as_cli(cli, "io_open", lambda: lorakit.resize(missing, out, rank=4, force=True),
                       "resize", missing, "-o", out, "--rank", "4", "--force")
    error = expect_same_as_cli(cli, "io_open", lambda: lorakit.inspect(missing), "inspect", missing)
    assert str(missing) in str(error)
    no_folder = tmp_path / "no" / "out.safetensors"
    expect_same_as_cli(cli, "io_open", lambda: lorakit.resize(sd15, no_folder, rank=4),
                       "resize", sd15, "-o", no_folder, "--rank", "4")


def test_write_failure_is_io_write(sd15, cli, tmp_path):
    """A file-size limit makes the output's writes fail (EFBIG), in Python and in the CLI alike."""
    limit = 4096

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out.safetensors"
    script = ("import lorakit, sys\n"
              "try:\n"
              f"    lorakit.resize({str(sd15)!r}, {str(out)!r}, rank=4)\n"
              "except lorakit.Error as e:\n"
              "    print(e.code); print(e, file=sys.stderr)\n")
    python = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, preexec_fn=limited,
                            env=os.environ)
    assert python.stdout == "io_write\n", python.stderr
    cli_run = subprocess.run([str(cli), "resize", str(sd15), "-o", str(out), "--rank", "4"], capture_output=True,
                             text=True, preexec_fn=limited)
    assert cli_run.returncode == 1
    assert cli_run.stderr == f"lorakit: error: {python.stderr}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_error_is_an_exception_with_code(sd15):
    assert issubclass(lorakit.Error, Exception)
    assert lorakit.Error.__module__ == "lorakit"
    with pytest.raises(lorakit.Error) as raised:
        lorakit.plan(sd15)
    assert raised.value.code == "invalid_argument"
