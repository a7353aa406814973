"""The type stubs name exactly the keywords the binding accepts, so editors complete real options."""
import ast
from pathlib import Path

import lorakit

STUB = Path(lorakit.__file__).with_name("__init__.pyi")
TREE = ast.parse(STUB.read_text())


def fields(class_name):
    """A TypedDict's keys, its bases' included."""
    for node in TREE.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            names = [f for base in node.bases if isinstance(base, ast.Name) and base.id != "TypedDict"
                     for f in fields(base.id)]
            return names + [item.target.id for item in node.body if isinstance(item, ast.AnnAssign)]
    raise AssertionError(f"{class_name} is not in {STUB}")


def options_of(function):
    """The TypedDict that types a function's **options."""
    for node in TREE.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node.args.kwarg.annotation.slice.id
    raise AssertionError(f"{function} is not in {STUB}")


def test_stub_is_shipped_with_the_package():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_resize_keywords_match_the_binding():
    for function in ("resize", "plan", "resize_bytes"):
        assert options_of(function) == "ResizeOptions"
    assert sorted(fields("ResizeOptions")) == sorted(list(lorakit.RESIZE_OPTIONS) + ["progress"])


def test_batch_keywords_match_the_binding():
    assert options_of("batch") == "BatchOptions"
    assert sorted(fields("BatchOptions")) == sorted(list(lorakit.BATCH_OPTIONS) + ["progress"])


def test_every_stubbed_keyword_is_accepted(tmp_path):
    """Each keyword is taken by the binding (None = not given): none is refused as unknown."""
    for name in fields("ResizeOptions"):
        try:
            lorakit.plan(tmp_path / "missing.safetensors", rank=4, **({name: None} if name != "rank" else {}))
        except lorakit.Error as error:
            assert error.code == "io_open", (name, error)
