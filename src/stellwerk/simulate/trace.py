"""Traces: past requests as JSON Lines, to replay in a simulation, and ``stellwerk export-trace`` to make them.

One line per request, in order of time (seconds from the start of the trace)::

    {"time": 0.25, "model": "chat", "prompt_tokens": 412, "output_tokens": 180, "stream": true}

``operation`` (``chat`` or ``embeddings``) may be added; without it a model whose name
contains ``embed`` gets embeddings requests. Exported from:

- the JSON access log (``server.access_log``): every field; a line's ``time`` is when the
  request finished, so it arrived ``latency_ms`` earlier;
- the spend ledger (``server.store``, SQLite): the same, except that the ledger does not
  record whether a request streamed (``stream`` is false).
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import msgspec

from .scenario import ScenarioError
from .upstreams import MAX_OUTPUT_TOKENS

if TYPE_CHECKING:
    from .traffic import Arrival

__all__ = ["TraceLine", "export_access_log", "export_ledger", "read_trace", "write_trace"]


class TraceLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    time: float
    model: str
    prompt_tokens: int
    output_tokens: int
    stream: bool = False
    operation: Literal["chat", "embeddings"] | None = None


_decode = msgspec.json.Decoder(TraceLine).decode
_encode = msgspec.json.Encoder().encode


def read_trace(path: Path) -> Iterator[Arrival]:
    """The trace's requests in order; :class:`~.scenario.ScenarioError` naming the line of a bad one."""
    from .traffic import Arrival

    try:
        f = path.open("rb")
    except OSError as err:
        raise ScenarioError(f"traffic.trace: {err}") from None
    with f:
        last = 0.0
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                line = _decode(raw)
            except msgspec.ValidationError as err:
                raise ScenarioError(f"{path}:{number}: {err}") from None
            except msgspec.DecodeError:
                raise ScenarioError(f"{path}:{number}: not a JSON object") from None
            if line.time < last or line.time < 0:
                raise ScenarioError(f"{path}:{number}: time {line.time:g} is before the line above ({last:g})")
            if line.prompt_tokens < 1 or line.output_tokens < 1:
                raise ScenarioError(f"{path}:{number}: prompt_tokens and output_tokens must be >= 1")
            last = line.time
            operation = line.operation or ("embeddings" if "embed" in line.model.lower() else "chat")
            yield Arrival(line.time, line.model, operation, line.stream and operation == "chat",
                          line.prompt_tokens, min(line.output_tokens, MAX_OUTPUT_TOKENS))


def write_trace(lines: Iterable[tuple[float, str, int, int, bool]], out: IO[bytes]) -> int:
    """``(start time, model, prompt, output, stream)`` in any order, written from time 0 in order. Returns the count."""
    rows = sorted(lines)
    if not rows:
        return 0
    origin = rows[0][0]
    for start, model, prompt, output, stream in rows:
        out.write(_encode(TraceLine(time=round(start - origin, 3), model=model, prompt_tokens=max(1, prompt),
                                    output_tokens=max(1, output), stream=stream)) + b"\n")
    return len(rows)


class _LogLine(msgspec.Struct):
    time: str
    model: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    stream: bool = False
    operation: str = "chat"


def export_access_log(path: Path) -> Iterator[tuple[float, str, int, int, bool]]:
    """The requests of a JSON access log (other lines, such as plain log messages on stdout, are skipped)."""
    decode = msgspec.json.Decoder(_LogLine).decode
    with path.open("rb") as f:
        for raw in f:
            try:
                line = decode(raw)
                finished = datetime.datetime.fromisoformat(line.time.replace("Z", "+00:00")).timestamp()
            except (msgspec.DecodeError, ValueError):
                continue
            yield finished - line.latency_ms / 1000, line.model, line.prompt_tokens, line.completion_tokens, line.stream


def export_ledger(url: str, since: float | None = None, until: float | None = None
                  ) -> Iterator[tuple[float, str, int, int, bool]]:
    """The requests of a SQLite spend ledger (``sqlite:///path``), opened read-only."""
    if not url.startswith("sqlite:///"):
        raise ValueError("export-trace reads SQLite ledgers (sqlite:///path.db); for others use --access-log")
    path = Path(url[len("sqlite:///"):])
    if not path.is_file():
        raise ValueError(f"{path}: no such ledger")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT time - latency, model, prompt_tokens, completion_tokens FROM spend "
                          "WHERE time >= ? AND time < ? ORDER BY time",
                          (since if since is not None else float("-inf"), until if until is not None else float("inf")))
        for start, model, prompt, completion in rows:
            yield float(start), str(model), int(prompt), int(completion), False
    finally:
        db.close()
