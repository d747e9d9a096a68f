"""How the demo looks: a live board (``rich``), plain progress lines for logs and CI, and a summary.

The live board, top to bottom::

    header      where the gateway listens, the routing order, the failure schedule, the traffic
    table       per deployment: provider state, answers served, share, failed attempts, latency, tokens, cost
    totals      what the client saw: requests, success rate, failovers, latency percentiles, cost
    timeline    who served each second (block height = share), seconds a provider was down in red
    events      failovers, outages and recoveries, repeated ones merged into one line with a count

Everything here only reads a :class:`~stellwerk.demo.tally.Tally` and the gateway's
:class:`~stellwerk.telemetry.StatsCollector`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stellwerk.telemetry import DeploymentStats, StatsCollector

from .scenario import next_change
from .tally import TIMES, Event, Tally, percentile

__all__ = ["DeploymentInfo", "Header", "PlainPrinter", "render_board", "render_summary"]

_COLORS = ("cyan", "magenta", "yellow", "blue", "green")
_BLOCKS = " ▁▂▃▄▅▆▇█"
_DASH = "\N{EN DASH}"
_LEVEL_STYLES = {"info": "", "warn": "yellow", "bad": "bold red", "good": "green"}
_SOURCE_STYLES = {"sim": "magenta", "gateway": "blue", "client": "red"}


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """What a deployment is, for its row's second line."""

    input_per_mtok: float
    output_per_mtok: float
    latency_ms: float | None = None
    """Mean time to first token of its simulated provider, if it is one."""


@dataclass(frozen=True, slots=True)
class Header:
    """What does not change while the demo runs."""

    gateway_url: str
    model: str
    deployments: tuple[str, ...]
    info: Mapping[str, DeploymentInfo]
    schedule: str
    """The failure schedule in words."""
    rps: float
    stream_share: float
    duration: float
    """Seconds, or 0 for "until Ctrl-C"."""

    def color(self, deployment: str) -> str:
        index = self.deployments.index(deployment) if deployment in self.deployments else -1
        return _COLORS[index % len(_COLORS)] if index >= 0 else "white"


# -- formatting ------------------------------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _count(value: int) -> str:
    return f"{value / 1000:.1f}k" if value >= 10_000 else str(value)


def _money(value: float) -> str:
    return f"${value:.4f}" if value < 10 else f"${value:,.2f}"


def _rate(value: float | None) -> Text:
    if value is None:
        return Text(_DASH)
    return Text(f"{value * 100:.1f} %", style="bold green" if value == 1 else "bold red")


def _stats(stats: StatsCollector, deployment: str) -> DeploymentStats:
    return stats.deployments.get(deployment) or DeploymentStats()


def _served_total(stats: StatsCollector, deployments: Sequence[str]) -> int:
    return sum(_stats(stats, d).requests for d in deployments)


# -- the live board --------------------------------------------------------------------------------------------------
def render_board(header: Header, tally: Tally, stats: StatsCollector, *, height: int, width: int,
                 phase: str = "running") -> RenderableType:
    """The board for a ``width`` x ``height`` terminal: narrow ones lose columns, short ones lose detail lines."""
    wide, tall = width >= 110, height >= 34
    n = len(header.deployments)
    used = (6 if tall else 5) + (2 + n * (2 if tall else 1)) + 1 + (3 + n) + 2
    return Group(
        _header(header, tally, phase, tall),
        _deployment_table(header, tally, stats, wide, tall),
        _totals(tally, stats),
        _timeline(header, tally, width),
        _events(tally.events, max(2, height - used)),
    )


def _header(header: Header, tally: Tally, phase: str, tall: bool) -> Panel:
    """``phase``: ``running``, ``stopping`` (waiting for answers in flight) or ``done``."""
    elapsed = tally.clock()
    if phase == "stopping":
        clock = Text("stopping: waiting for answers in flight", style="bold")
    elif phase == "done":
        clock = Text(f"done after {elapsed:.1f} s", style="bold")
    elif header.duration:
        clock = Text(f"{elapsed:4.1f} s of {header.duration:g} s")
    else:
        clock = Text(f"{elapsed:4.1f} s · Ctrl-C to stop")
    order = Text(" → ").join(Text(d, style=f"bold {header.color(d)}") for d in header.deployments)
    lines = [
        Text.assemble(("gateway  ", "dim"), (header.gateway_url, "bold"), ("  model ", "dim"), (header.model, "bold"),
                      ("  traffic ", "dim"), f"{header.rps:g} req/s, {header.stream_share:.0%} streamed"),
        Text.assemble(("routing  ", "dim"), "failover ", order),
        Text.assemble(("failures ", "dim"), header.schedule),
    ]
    if tall:
        lines.append(Text.assemble(("try it   ", "dim"), f'OpenAI(base_url="{header.gateway_url}", api_key="demo")'
                                   f', model="{header.model}"', style="dim"))
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return Panel(Group(*lines), title="[bold]Stellwerk demo[/]", title_align="left", subtitle=clock,
                 subtitle_align="right", border_style="blue", padding=(0, 1))


def _state(tally: Tally, deployment: str, tall: bool) -> Text:
    outages = tally.schedules.get(deployment, ())
    change = next_change(outages, tally.clock()) if outages else None
    down = tally.down(deployment)
    text = Text("✖ DOWN", style="bold white on red") if down else Text("● up", style="bold green")
    if change is not None:
        when = f"{'back' if down else 'fails'} in {math.ceil(change)} s"
        text.append(f"\n{when}" if tall else f" {when}", style="dim")
    return text


def _note(info: DeploymentInfo | None, wide: bool) -> str:
    if info is None:
        return ""
    price = f"${info.input_per_mtok:.2f}/${info.output_per_mtok:.2f}" + (" per Mtok" if wide else "")
    return price if info.latency_ms is None else f"ttft {info.latency_ms:g} ms · {price}"


def _deployment_table(header: Header, tally: Tally, stats: StatsCollector, wide: bool, tall: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
    table.add_column("Deployment", no_wrap=True)
    table.add_column("Provider", no_wrap=True)
    numbers = ("Served", "Share", "Failed", "p50", "EWMA", "Tokens", "Cost") if wide else \
        ("Served", "Share", "Failed", "p50", "Cost")
    for name in numbers:
        table.add_column(name, justify="right", no_wrap=True)
    served_total = _served_total(stats, header.deployments)
    for d in header.deployments:
        s = _stats(stats, d)
        label = Text(d, style=f"bold {header.color(d)}")
        if tall:
            label.append("\n" + _note(header.info.get(d), wide), style="dim")
        values: dict[str, str | Text] = {
            "Served": str(s.requests), "Share": f"{s.requests / served_total if served_total else 0:.0%}",
            "Failed": Text(str(s.failures), style="red" if s.failures else "dim"),
            "p50": _seconds(percentile(tally.latency.get(d, ()), 0.5)), "EWMA": _seconds(s.latency_ewma),
            "Tokens": _count(s.prompt_tokens + s.completion_tokens), "Cost": _money(s.cost),
        }
        table.add_row(label, _state(tally, d, tall), *(values[name] for name in numbers))
    return table


def _totals(tally: Tally, stats: StatsCollector) -> Text:
    c = tally.client_totals
    line = Text.assemble(
        ("client  ", "dim"), (f"{c.completed}", "bold"), " answers · ", _rate(c.success_rate), " ok · ",
        (str(tally.failovers), "bold yellow" if tally.failovers else "bold"), " failovers · ",
        (_money(stats.cost), "bold"), " · ", ("p50 ", "dim"), _seconds(percentile(c.latencies, 0.5)),
        ("  p99 ", "dim"), _seconds(percentile(c.latencies, 0.99)),
        ("  first token p50 ", "dim"), _seconds(percentile(c.ttfts, 0.5)),
    )
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _timeline(header: Header, tally: Tally, width: int) -> Panel:
    label = max(len(d) for d in header.deployments) + 1
    seconds = max(10, width - label - 4)
    rows = []
    first = 0
    for d in header.deployments:
        first, cells = tally.timeline(d, seconds)
        row = Text(d.ljust(label), style=header.color(d))
        for share, down in cells:
            if share is None:
                row.append(TIMES if down else " ", style="red")
            elif share == 0:
                row.append(TIMES if down else "·", style="red" if down else "dim")
            else:
                row.append(_BLOCKS[max(1, round(share * 8))], style="red" if down else header.color(d))
        rows.append(row)
    rows.append(Text(" " * label + _axis(first, seconds), style="dim"))
    return Panel(Group(*rows), title=f"who answered, per second (bar = share of answers; {TIMES} = provider down)",
                 title_align="left", border_style="dim", padding=(0, 1))


def _axis(first: int, width: int) -> str:
    """Second marks every 5 s under the timeline: ``0s   5s   10s ...``."""
    axis = [" "] * width
    for second in range(first + (-first % 5), first + width, 5):
        mark = f"{second}s"
        at = second - first
        if at + len(mark) <= width and all(c == " " for c in axis[max(0, at - 1):at + len(mark)]):
            axis[at:at + len(mark)] = mark
    return "".join(axis).rstrip()


def _event_line(event: Event) -> Text:
    line = Text.assemble((f"{event.first:6.1f}s ", "dim"), (f"{event.source:<8}", _SOURCE_STYLES.get(event.source, "")))
    line.append(event.text, style=_LEVEL_STYLES.get(event.level, ""))
    if event.count > 1:
        line.append(f"  {TIMES}{event.count}", style="bold")
        line.append(f" ({event.first:.1f}{_DASH}{event.last:.1f} s)", style="dim")
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _events(events: Sequence[Event], limit: int) -> Panel:
    shown = sorted(events, key=lambda e: e.first)[-limit:]
    body: RenderableType = Group(*(_event_line(e) for e in shown)) if shown else Text("nothing yet", style="dim")
    return Panel(body, title="events", title_align="left", border_style="dim", padding=(0, 1))


# -- the summary -----------------------------------------------------------------------------------------------------
def render_summary(header: Header, tally: Tally, stats: StatsCollector, elapsed: float,
                   *, history: bool = True) -> RenderableType:
    """Totals, the per-deployment table and (with ``history``) the last 20 events."""
    c = tally.client_totals
    title = Text.assemble(
        ("Summary  ", "bold"), f"{c.completed} requests in {elapsed:.1f} s · ", _rate(c.success_rate), " answered · ",
        (f"{tally.failovers}", "bold yellow"), " failovers · ", (_money(stats.cost), "bold"),
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Deployment")
    for name in ("Served", "Share", "Failed attempts", "p50 latency", "Cost"):
        table.add_column(name, justify="right")
    served_total = _served_total(stats, header.deployments)
    for d in header.deployments:
        s = _stats(stats, d)
        table.add_row(Text(d, style=header.color(d)), str(s.requests),
                      f"{s.requests / served_total:.0%}" if served_total else _DASH, str(s.failures),
                      _seconds(percentile(tally.latency.get(d, ()), 0.5)), _money(s.cost))
    latency = Text.assemble(
        ("client latency p50 ", "dim"), _seconds(percentile(c.latencies, 0.5)),
        (" · p99 ", "dim"), _seconds(percentile(c.latencies, 0.99)),
        (" · first token p50 ", "dim"), _seconds(percentile(c.ttfts, 0.5)), (f" ({c.streams} streamed)", "dim"),
    )
    parts: list[RenderableType] = [title, table, latency]
    if c.errors:
        parts.append(Text("client errors: " + "; ".join(f"{e} {TIMES}{n}" for e, n in c.errors.most_common(5)),
                          style="bold red"))
    events = sorted(tally.events, key=lambda e: e.first)[-20:] if history else []
    if events:
        parts.append(Text("what happened:", style="bold"))
        parts.extend(_event_line(e) for e in events)
    return Group(*parts)


# -- plain lines -----------------------------------------------------------------------------------------------------
class PlainPrinter:
    """Progress as plain lines (for logs, CI and pipes): new events as they happen and a status line per call."""

    def __init__(self, header: Header, tally: Tally, stats: StatsCollector, out: IO[str]) -> None:
        self._header = header
        self._tally = tally
        self._stats = stats
        self._out = out
        self._served = dict.fromkeys(header.deployments, 0)
        self._events_seen = 0

    def intro(self) -> None:
        h = self._header
        self._write(f"stellwerk demo: gateway {h.gateway_url} (model {h.model!r}), "
                    f"failover {' -> '.join(h.deployments)}")
        self._write(f"schedule: {h.schedule}; traffic: {h.rps:g} req/s, {h.stream_share:.0%} streamed")

    def update(self) -> None:
        tally = self._tally
        new = tally.event_count - self._events_seen
        for event in list(tally.events)[-new:] if new > 0 else ():
            self._write(f"{event.first:6.1f}s {event.source:<8}{event.text}")
        self._events_seen = tally.event_count
        parts = []
        for d in self._header.deployments:
            served = _stats(self._stats, d).requests
            state = " DOWN" if tally.down(d) else ""
            parts.append(f"{d}{state} {served - self._served[d]}")
            self._served[d] = served
        c = tally.client_totals
        rate = "-" if c.success_rate is None else f"{c.success_rate * 100:.1f}%"
        self._write(
            f"{tally.clock():6.1f}s answers {c.completed} ok {rate} failovers {tally.failovers} "
            f"p50 {_seconds(percentile(c.latencies, 0.5))} cost {_money(self._stats.cost)} | served: {', '.join(parts)}"
        )

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()
