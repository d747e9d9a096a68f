"""Reports as text: one config, or several side by side with the differences to the first.

    availability          99.71 %        100.00 %      +0.29 pp
    latency p99           4.520 s        3.912 s       -0.608 s
    ...
    share: primary        51.9 %  ▇▇▇▁▁▁▁▇▇▇   ...

A deployment's share over time is a bar per bucket (``▁`` none of the answers .. ``█`` all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render"]

_BARS = " ▁▂▃▄▅▆▇█"
_LABEL = 24

Row = tuple[str, Callable[[dict[str, Any]], float | None], Callable[[float], str], Callable[[float], str]]


def _pct(v: float) -> str:
    return f"{v * 100:.2f} %"


def _pp(d: float) -> str:
    return f"{d * 100:+.2f} pp"


def _secs(v: float) -> str:
    return f"{v:.3f} s"


def _dsecs(d: float) -> str:
    return f"{d:+.3f} s"


def _num(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.2f}"


def _dnum(d: float) -> str:
    return f"{d:+,.0f}" if d == int(d) else f"{d:+,.2f}"


def _usd(v: float) -> str:
    return f"${v:,.4f}"


def _dusd(d: float) -> str:
    return f"{'+' if d >= 0 else '-'}${abs(d):,.4f}"


def _q(field: str, q: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: (r.get(field) or {}).get(q)


_ROWS: list[Row] = [
    ("requests", lambda r: r["requests"], _num, _dnum),
    ("availability", lambda r: r["availability"], _pct, _pp),
    ("attempts per request", lambda r: r["attempts_per_request"], lambda v: f"{v:.3f}", lambda d: f"{d:+.3f}"),
    *((f"latency {q}", _q("latency", q), _secs, _dsecs) for q in ("p50", "p90", "p99")),
    *((f"ttft {q}", _q("ttft", q), _secs, _dsecs) for q in ("p50", "p90", "p99")),
    ("cost total", lambda r: r["cost"]["total"], _usd, _dusd),
    ("cost per 1k requests", lambda r: r["cost"]["per_1k"], _usd, _dusd),
]


def render(reports: Sequence[dict[str, Any]]) -> str:
    """One report, or several side by side (differences to the first in the last column, for two)."""
    first = reports[0]
    rows: list[list[str]] = [["", *(_names(reports)), *(["difference"] if len(reports) == 2 else [])]]
    for label, get, fmt, diff in _ROWS:
        values = [get(r) for r in reports]
        row = [label, *("-" if v is None else fmt(v) for v in values)]
        if len(reports) == 2 and values[0] is not None and values[1] is not None:
            row.append(diff(values[1] - values[0]))
        rows.append(row)
    for label, key in (("errors", "errors"), ("upstream errors", "upstream_errors"),
                       ("limit violations", "limit_violations")):
        rows.append([label, *(_counts(r.get(key) or {}) for r in reports)])
    widths = [max(len(row[i]) for row in rows if i < len(row)) + 3 for i in range(max(map(len, rows)))]
    lines = [f"scenario: {first.get('scenario', '?')}, seed {first['seed']}, {first['duration']:g} s of virtual time",
             ""]
    lines += ["".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines += _shares(reports)
    lines += _outages(reports)
    return "\n".join(lines) + "\n"


def _names(reports: Sequence[dict[str, Any]]) -> list[str]:
    """The configs' file names, or their whole paths when the names alone are the same."""
    names = [Path(r["config"]).name for r in reports]
    return names if len(set(names)) == len(names) else [r["config"] for r in reports]


def _counts(counts: dict[str, int]) -> str:
    shown = {k: v for k, v in counts.items() if v}
    return ", ".join(f"{k}: {v:,}" for k, v in shown.items()) if shown else "none"


def _shares(reports: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["", f"share of answers, and over time ({reports[0]['bucket_seconds']:g} s per bar):"]
    for r in reports:
        if len(reports) > 1:
            lines.append(f"  {r['config']}")
        for dep, d in r["deployments"].items():
            bars = "".join(_BARS[round(s * (len(_BARS) - 1))] for s in d["over_time"])
            lines.append(f"    {dep:<{_LABEL - 4}}{d['share'] * 100:6.1f} %  {bars}")
    return lines


def _outages(reports: Sequence[dict[str, Any]]) -> list[str]:
    if not any(r["outages"] for r in reports):
        return []
    lines = ["", "outages (time to detect: until the breaker opened; to recover: until the first answer after it):"]
    for r in reports:
        if len(reports) > 1:
            lines.append(f"  {r['config']}")
        for o in r["outages"]:
            detect = "never (no breaker opened)" if o["detected_after"] is None else f"{o['detected_after']:g} s"
            recover = "not within the run" if o["recovered_after"] is None else f"{o['recovered_after']:g} s"
            lines.append(f"    {o['deployment']} down {o['start']:g}-{o['end']:g} s: detected after {detect}, "
                         f"recovered after {recover}, {o['failed_requests']:,} failed requests")
    return lines
