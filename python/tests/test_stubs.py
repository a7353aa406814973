"""The type stubs name exactly the keywords the binding accepts, so editors complete real options."""
import ast
from pathlib import Path

import lorakit

STUB = Path(lorakit.__file__).with_name("__init__.pyi")


def keyword_only(function):
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return [arg.arg for arg in node.args.kwonlyargs]
    raise AssertionError(f"{function} is not in {STUB}")


def test_stub_is_shipped_with_the_package():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_resize_keywords_match_the_binding():
    expected = list(lorakit.RESIZE_OPTIONS) + ["progress"]
    for function in ("resize", "plan", "resize_bytes"):
        assert sorted(keyword_only(function)) == sorted(expected), function


def test_batch_keywords_match_the_binding():
    assert sorted(keyword_only("batch")) == sorted(list(lorakit.BATCH_OPTIONS) + ["progress"])


def test_every_stubbed_keyword_is_accepted(tmp_path):
    """Each keyword is taken by the binding (None = not given), none is silently ignored as unknown."""
    for name in lorakit.RESIZE_OPTIONS:
        try:
            lorakit.plan(tmp_path / "missing.safetensors", rank=4, **({name: None} if name != "rank" else {}))
        except lorakit.Error as error:
            assert error.code == "io_open", (name, error)
