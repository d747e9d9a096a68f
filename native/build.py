"""Compile the request path's modules to C extensions with mypyc, in place (``make native``).

    .venv/bin/python native/build.py            # compile native/modules.txt into src/
    .venv/bin/python native/build.py --clean    # remove the compiled modules (pure Python again)

The modules in ``native/modules.txt`` (paths under ``src/``) are type-checked Python (``mypy --strict``);
mypyc turns them into one C extension group whose module files sit next to their ``.py`` sources, where
the import system prefers them. Nothing else changes: the same code, the same API, the same tests.

``src/stellwerk/native.json`` records a digest of each compiled source. At import, ``stellwerk.native``
compares it with the sources: if any compiled module's source changed since the build (an edit, a
checkout), every compiled module is loaded from its ``.py`` instead, with one warning, so a stale build
never runs. ``STELLWERK_PURE=1`` loads them from source on purpose (debugging, profiling with py-spy).

What compiled modules must not do (mypyc 2.4; tests/test_native.py checks the first):

- ``await`` inside ``finally``: when an exception passed through such a ``finally``, the next call of that
  coroutine that passes it normally re-raises the old exception. Clean up on both paths instead
  (``except BaseException: await clean(); raise``, then ``await clean()``).
- async generators (not implemented), and ``class X(msgspec.Struct, frozen=True)``: mypyc drops class
  keywords. Such code stays in modules that are not listed.
- values that do not match their annotations: a compiled module checks them (a stub that says ``bytes``
  where the library gives ``None`` raises TypeError). Type such a value ``Any`` where it enters.
- ``is`` between tuples: a typed tuple is unboxed in a compiled function and boxed again as a new object
  (``chunk is dropped_chunk`` is never true). Compare positions or values instead.
- one name for ``except A as err`` and ``except B as err`` in one function: the variable gets A's type, and
  binding a B raises TypeError (tests/test_native.py checks it).
- ``isinstance(x, S)`` where ``S`` is a msgspec Struct defined in a compiled module is an exact type check
  (subclasses fail it): records live in interpreted modules (``*_types.py``, ``records.py``).
- subclassing a compiled class in an interpreted module needs ``@mypyc_attr(allow_interpreted_subclasses=True)``.

Without a C compiler or mypyc the build says why and leaves the tree pure Python (exit 0), except under
``CI=true``, where it fails: CI tests what users run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
os.environ["STELLWERK_PURE"] = "1"  # the build's own import of the package needs no compiled module
from stellwerk.native import MANIFEST, digest, read_list  # noqa: E402


def clean() -> None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for path in {*SRC.rglob(f"*{suffix}"), *SRC.glob(f"*__mypyc{suffix}")}:
        path.unlink(missing_ok=True)
    MANIFEST.unlink(missing_ok=True)


def unavailable() -> str | None:
    if shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is None:
        return "no C compiler (" + sysconfig.get_config_var("CC") + ")"
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypyc is not installed (pip install -e '.[dev]')"
    return None


def build() -> int:
    reason = unavailable()
    if reason is not None:
        print(f"native build skipped: {reason}; Stellwerk runs as pure Python", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    clean()
    paths = read_list(ROOT / "native" / "modules.txt")
    with tempfile.TemporaryDirectory(prefix="stellwerk-native-") as tmp:
        # mypyc's C files and the objects go to a temporary folder; the extensions land next to their
        # sources (build_ext --inplace, run in src/).
        script = (f"from setuptools import setup; from mypyc.build import mypycify; "
                  f"setup(name='stellwerk-native', ext_modules=mypycify({paths!r}, opt_level='3', "
                  f"target_dir={tmp + '/c'!r}), script_args=['build_ext', '--inplace', '--build-temp', {tmp!r}])")
        done = subprocess.run([sys.executable, "-c", script], cwd=SRC, capture_output=True, text=True, check=False)
        shutil.rmtree(SRC / ".mypy_cache", ignore_errors=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        clean()
        print("native build failed (mypyc's output above): make the module compile (see this file's docstring) "
              "or take it off native/modules.txt; until then Stellwerk runs as pure Python", file=sys.stderr)
        return 1
    MANIFEST.write_text(json.dumps({path: digest(SRC / path) for path in paths}, indent=1, sort_keys=True) + "\n")
    print(f"native build: {len(paths)} modules compiled (native/modules.txt)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    if args.clean:
        clean()
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main())
