"""Turn measurements into markdown tables, and splice them into a marked section of RESULTS.md."""

from __future__ import annotations

import math
from pathlib import Path

from .load import CONCURRENCY, FixedRate
from .measure import ModeResult, TargetResult

NA = "n/a"

# The goals from the issue: (label, limit, "<=" or ">=").
GOAL_CPU_VS_NGINX = 5.0
GOAL_PER_CORE_VS_LITELLM = 100.0
GOAL_ADDED_P99_MS = 1.0
GOAL_RSS_MB = 80.0
GOAL_STARTUP_S = 1.0


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return NA if value is None or math.isnan(value) else fmt.format(value)


def _mode(result: TargetResult | None, mode: str) -> ModeResult | None:
    return None if result is None or result.error else result.modes.get(mode)


def _latency(res: ModeResult | None, rate: float) -> tuple[float, float, float] | None:
    """(p50, p90, p99) in µs."""
    lat = res.latency.get(rate) if res else None
    return (lat.p50_us, lat.p90_us, lat.p99_us) if lat and lat.samples else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def measurements_table(results: dict[str, TargetResult]) -> list[str]:
    direct = results.get("direct")
    rows = [
        f"| target | mode | req/s @c{CONCURRENCY} | errors | proxy CPU µs/req | upstream CPU µs/req "
        "| fixed rate, conns (samples) | p50 / p90 / p99 ms | added p50 / p90 / p99 ms |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, result in results.items():
        if result.error:
            rows.append(f"| {name} | - | {NA} | | | | | | |")
            continue
        for mode, res in result.modes.items():
            for i, rate in enumerate(res.latency or [float("nan")]):
                rows.append(_measurement_row(name, mode, res, rate, _mode(direct, mode), first=i == 0))
    return rows


def _measurement_row(name: str, mode: str, res: ModeResult, rate: float, direct: ModeResult | None,
                     first: bool) -> str:
    sat = res.saturation if first else None
    lat, base = _latency(res, rate), _latency(direct, rate)
    added = tuple(a - b for a, b in zip(lat, base, strict=True)) if lat and base and name != "direct" else None
    errors = "" if not first else NA if sat is None else str(sat.error_count) + (
        f" ({', '.join(f'{k} {v}' for k, v in sat.errors.items())})" if sat.errors else "")
    lat_errors = res.latency[rate].errors if rate in res.latency else 0
    if lat_errors:
        errors += f"; {lat_errors} at fixed rate"
    blank = "" if not first else NA
    ms = "{:.3f}"
    return (
        f"| {name} | {mode} | {_num(sat.rps) if sat else blank} | {errors} "
        f"| {_cpu_cell(res) if first else ''} | {_num(res.upstream_cpu_us) if first else ''} "
        f"| {_rate_cell(res.latency[rate]) if rate in res.latency else NA} "
        f"| {' / '.join(_num(v / 1000, ms) for v in lat) if lat else NA} "
        f"| {' / '.join(_num(v / 1000, '{:+.3f}') for v in added) if added else NA} |"
    )


def _cpu_cell(res: ModeResult) -> str:
    """The median, and the spread over rounds when there were several: ``245 (238 to 251)``."""
    spread = f" ({_num(res.cpu_us_range[0])} to {_num(res.cpu_us_range[1])})" if res.cpu_us_range else ""
    return _num(res.cpu_us) + spread


def _rate_cell(lat: FixedRate) -> str:
    return f"{lat.rate:g}/s c{lat.connections} ({lat.samples})"


def process_table(results: dict[str, TargetResult]) -> list[str]:
    rows = ["| target | start-up to ready ms | peak RSS MB | notes |", "|---|--:|--:|---|"]
    for name, r in results.items():
        if name == "direct":
            continue
        notes = r.error or "; ".join(f"{m}: {res.error or res.answer}" for m, res in r.modes.items())
        rows.append(f"| {name} | {_num(r.startup_s * 1000 if r.startup_s is not None else None)} "
                    f"| {_num(r.rss_mb, '{:.1f}')} | {notes.replace('|', '/')} |")
    return rows


def _goal_row(label: str, value: float | None, fmt: str, goal: str, ok: bool | None) -> str:
    verdict = NA if ok is None or value is None else ("yes" if ok else "**no**")
    return f"| {label} | {_num(value, fmt)} | {goal} | {verdict} |"


def goals_table(results: dict[str, TargetResult]) -> list[str]:
    sw, ng, ll = results.get("stellwerk"), results.get("nginx"), results.get("litellm")
    rows = ["| metric | value | goal | met |", "|---|--:|---|---|"]
    for mode in ("json", "stream"):
        s, n, lt = _mode(sw, mode), _mode(ng, mode), _mode(ll, mode)
        cpu = _ratio(s.cpu_us if s else None, n.cpu_us if n else None)
        rows.append(_goal_row(f"{mode}: stellwerk ÷ nginx, CPU per request", cpu, "{:.1f}x",
                              f"≤ {GOAL_CPU_VS_NGINX:g}x", cpu is not None and cpu <= GOAL_CPU_VS_NGINX))
        per_core = _ratio(lt.cpu_us if lt else None, s.cpu_us if s else None)
        rows.append(_goal_row(f"{mode}: stellwerk ÷ litellm, throughput per core (= CPU/req ratio)", per_core,
                              "{:,.0f}x", f"≥ {GOAL_PER_CORE_VS_LITELLM:g}x",
                              per_core is not None and per_core >= GOAL_PER_CORE_VS_LITELLM))
        rps = _ratio(s.saturation.rps if s and s.saturation else None,
                     lt.saturation.rps if lt and lt.saturation else None)
        rows.append(_goal_row(f"{mode}: stellwerk ÷ litellm, measured req/s", rps, "{:,.0f}x", "(context)", None))
        rate = next(iter(s.latency), sw.plan.rates[0]) if s and sw else float("nan")
        lat, base = _latency(s, rate), _latency(_mode(results.get("direct"), mode), rate)
        added = (lat[2] - base[2]) / 1000 if lat and base else None
        rows.append(_goal_row(f"{mode}: stellwerk added p99 @{rate:g}/s, c{CONCURRENCY} (ms)", added, "{:.3f}",
                              f"< {GOAL_ADDED_P99_MS:g} ms", added is not None and added < GOAL_ADDED_P99_MS))
        added50 = (lat[0] - base[0]) / 1000 if lat and base else None
        rows.append(_goal_row(f"{mode}: stellwerk added p50 @{rate:g}/s (ms)", added50, "{:.3f}", "(context)", None))
    rss = sw.rss_mb if sw and not sw.error else None
    rows.append(_goal_row("stellwerk peak RSS under load (MB)", rss, "{:.1f}", f"< {GOAL_RSS_MB:g} MB",
                          rss is not None and rss < GOAL_RSS_MB))
    start = sw.startup_s if sw and not sw.error else None
    rows.append(_goal_row("stellwerk start-up to ready (s)", start, "{:.3f}", f"< {GOAL_STARTUP_S:g} s",
                          start is not None and start < GOAL_STARTUP_S))
    return rows


def problems(results: dict[str, TargetResult]) -> list[str]:
    out = [f"- {name}: {r.error}" for name, r in results.items() if r.error]
    out += [f"- {name} {mode}: {res.error}" for name, r in results.items() for mode, res in r.modes.items()
            if res.error]
    return out


def render(results: dict[str, TargetResult], env: dict[str, str], settings: list[str]) -> str:
    lines = ["### Environment", ""]
    lines += [f"- **{k}**: {v}" for k, v in env.items()]
    lines += ["", "### Settings", ""] + [f"- {s}" for s in settings]
    lines += ["", "### Per target and mode", "", *measurements_table(results)]
    lines += ["", "### Processes", "", *process_table(results)]
    lines += ["", "### Goals", "", *goals_table(results)]
    if errors := problems(results):
        lines += ["", "### Problems", "", *errors]
    return "\n".join(lines) + "\n"


def splice(path: Path, section: str, body: str) -> None:
    """Replace the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` (appended if absent)."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)
