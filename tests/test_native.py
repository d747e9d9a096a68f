"""The native build's guard: a compiled module whose source changed never runs (see native/build.py)."""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import sys
from pathlib import Path

import pytest

import stellwerk.native as native
from stellwerk.native import FromSource, decide, digest, module_name, read_list

ROOT = Path(__file__).resolve().parent.parent
LISTED = read_list(ROOT / "native" / "modules.txt")


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "stellwerk"
    package.mkdir()
    (package / "fast.py").write_text("WHERE = 'source'\n")
    manifest = package / "native.json"
    manifest.write_text(json.dumps({"stellwerk/fast.py": digest(package / "fast.py")}))
    return tmp_path, manifest


def test_without_a_build_everything_is_pure(tmp_path: Path) -> None:
    assert decide(tmp_path / "native.json", tmp_path, {}) == ("pure", [])


def test_a_build_matching_its_sources_runs(tmp_path: Path) -> None:
    root, manifest = _tree(tmp_path)
    assert decide(manifest, root, {}) == ("native", [])
    assert decide(manifest, root, {"STELLWERK_PURE": "0"}) == ("native", [])


def test_a_changed_source_sends_every_compiled_module_to_its_source(tmp_path: Path) -> None:
    root, manifest = _tree(tmp_path)
    (root / "stellwerk" / "fast.py").write_text("WHERE = 'edited'\n")
    state, sources = decide(manifest, root, {})
    assert state == "the native build is stale (stellwerk/fast.py changed since it was built)"
    assert sources == ["stellwerk/fast.py"]


def test_a_removed_source_counts_as_changed(tmp_path: Path) -> None:
    root, manifest = _tree(tmp_path)
    (root / "stellwerk" / "fast.py").unlink()
    assert decide(manifest, root, {})[0].startswith("the native build is stale")


def test_stellwerk_pure_turns_the_build_off(tmp_path: Path) -> None:
    root, manifest = _tree(tmp_path)
    assert decide(manifest, root, {"STELLWERK_PURE": "1"}) == ("STELLWERK_PURE is set", ["stellwerk/fast.py"])


def test_an_unreadable_manifest_is_not_trusted(tmp_path: Path) -> None:
    root, manifest = _tree(tmp_path)
    manifest.write_text("{not json")
    assert decide(manifest, root, {})[0] == "native.json is unreadable"


def test_the_source_finder_loads_the_py_even_beside_an_extension(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (root / "stellwerk" / f"fast{suffix}").write_bytes(b"not a shared object")  # would fail to load
    spec = FromSource(root, ["stellwerk/fast.py"]).find_spec("stellwerk.fast")
    assert spec is not None and spec.origin == str(root / "stellwerk" / "fast.py")
    assert FromSource(root, ["stellwerk/fast.py"]).find_spec("stellwerk.other") is None


def test_module_names() -> None:
    assert module_name("stellwerk/http/server.py") == "stellwerk.http.server"
    assert module_name("stellwerk/pipeline/__init__.py") == "stellwerk.pipeline"


def test_the_listed_modules_exist_and_are_type_checked_sources() -> None:
    assert LISTED and len(set(LISTED)) == len(LISTED)
    for path in LISTED:
        assert (ROOT / "src" / path).is_file(), path


def test_what_runs_is_what_the_manifest_says() -> None:
    """With a build, every listed module is imported from its extension, unless it was turned off."""
    if os.environ.get("CI") == "true":
        assert native.compiled(), native.STATE  # CI tests the compiled request path
    elif not native.MANIFEST.exists():
        pytest.skip("no native build here (make native): the request path runs as pure Python")
    for path in LISTED:
        module = sys.modules.get(module_name(path)) or __import__(module_name(path), fromlist=["_"])
        origin = str(module.__file__)
        assert origin.endswith(".py") != native.compiled(), (path, origin)


def _awaits_in_handlers(tree: ast.AST) -> list[int]:
    """Lines of ``await``/``async for``/``async with`` inside an ``except`` or ``finally`` block."""
    blocks: list[ast.stmt] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try | ast.TryStar):
            blocks += node.finalbody
            blocks += [stmt for handler in node.handlers for stmt in handler.body]
    return sorted({sub.lineno for stmt in blocks for sub in ast.walk(stmt)
                   if isinstance(sub, ast.Await | ast.AsyncFor | ast.AsyncWith)})


def test_no_compiled_module_awaits_while_handling_an_exception() -> None:
    """mypyc (2.4) keeps the exception being handled set while a coroutine is suspended in an ``except`` or
    ``finally`` block: other tasks see it as theirs, and a later pass through the same ``finally`` re-raises
    an exception caught long before (it broke every stream after one cut). Compiled modules keep the
    exception, leave the block, then await (see native/build.py)."""
    found = {path: lines for path in LISTED
             if (lines := _awaits_in_handlers(ast.parse((ROOT / "src" / path).read_text())))}
    assert not found


def test_the_handler_check_sees_an_await() -> None:
    source = ("async def f():\n    try:\n        pass\n    except E:\n        await g()\n"
              "    finally:\n        async with h():\n            pass\n")
    assert _awaits_in_handlers(ast.parse(source)) == [5, 7]


def _except_names_of_two_types(tree: ast.AST) -> list[str]:
    clashes = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            types: dict[str, set[str]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.ExceptHandler) and node.name:
                    types.setdefault(node.name, set()).add(ast.unparse(node.type) if node.type else "")
            clashes += [f"{function.name}:{name}" for name, kinds in types.items() if len(kinds) > 1]
    return clashes


def test_no_compiled_function_reuses_an_except_name_for_another_type() -> None:
    """mypyc gives ``except A as err`` and a later ``except B as err`` in one function one variable of type A:
    binding a B then raises TypeError (every broken stream failed so). Each handler names its own variable."""
    found = {path: clashes for path in LISTED
             if (clashes := _except_names_of_two_types(ast.parse((ROOT / "src" / path).read_text())))}
    assert not found


def test_the_except_name_check_sees_a_clash() -> None:
    source = "def f():\n    try:\n        pass\n    except A as e:\n        pass\n    except B as e:\n        pass\n"
    assert _except_names_of_two_types(ast.parse(source)) == ["f:e"]
