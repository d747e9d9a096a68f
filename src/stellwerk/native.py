"""Which modules run compiled: the guard against a stale native build (see ``native/build.py``).

``make native`` compiles the request path's modules with mypyc next to their sources and records a digest
of each source in ``native.json``. Imported first by the package, this module compares the digests: if a
compiled module's source changed since the build, or ``STELLWERK_PURE=1`` is set, every compiled module is
loaded from its ``.py`` instead (all or none: compiled modules call each other directly).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["MANIFEST", "compiled", "decide", "digest", "read_list"]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("native.json")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_list(path: Path) -> list[str]:
    """The sources a module list (``native/modules.txt``) names: one path under ``src/`` a line, ``#`` comments."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def module_name(path: str) -> str:
    """``stellwerk/http/server.py`` → ``stellwerk.http.server`` (a package's ``__init__.py`` → the package)."""
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


class FromSource(importlib.abc.MetaPathFinder):
    """Finds the listed modules' ``.py`` files under ``root``, never their compiled extensions."""

    def __init__(self, root: Path, paths: Sequence[str]) -> None:
        self.sources = {module_name(path): root / path for path in paths}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        loader = importlib.machinery.SourceFileLoader(fullname, str(source))
        locations = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(fullname, source, loader=loader,
                                                      submodule_search_locations=locations)


def decide(manifest: Path, root: Path, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``("native", [])``, ``("pure", [])`` without a build, or why the build is not used and the sources
    to load instead of it."""
    try:
        recorded: dict[str, str] = json.loads(manifest.read_text())
    except FileNotFoundError:
        return "pure", []
    except (OSError, ValueError):
        return "native.json is unreadable", [path for path in _listed(root)]
    if environ.get("STELLWERK_PURE", "") not in ("", "0"):
        return "STELLWERK_PURE is set", list(recorded)
    stale = [path for path in recorded if not (root / path).exists() or digest(root / path) != recorded[path]]
    if stale:
        return f"the native build is stale ({stale[0]} changed since it was built)", list(recorded)
    return "native", []


def _listed(root: Path) -> list[str]:
    """Every module with a compiled extension beside its source (when the manifest cannot be read)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return [str(ext.relative_to(root))[: -len(suffix)] + ".py" for ext in (root / "stellwerk").rglob(f"*{suffix}")
            if ext.with_name(ext.name[: -len(suffix)] + ".py").exists()]


STATE, _sources = decide(MANIFEST, PACKAGE_ROOT, os.environ)
if _sources:
    sys.meta_path.insert(0, FromSource(PACKAGE_ROOT, _sources))
    if STATE != "STELLWERK_PURE is set":  # on purpose: no message
        sys.stderr.write(f"stellwerk: {STATE}; running as pure Python (run `make native`)\n")


def compiled() -> bool:
    """Whether the request path runs compiled (mypyc) in this process."""
    return STATE == "native"
