"""Running the demo: simulated providers, the gateway and the load generator in one event loop.

    start the simulated providers (ephemeral ports)
      -> gateway config from the scenario, with their URLs -> start the gateway
      -> restart the providers' clocks together (t = 0: outage schedules line up with the display)
      -> load generator sends over HTTP through the gateway, until the duration is up or ``stop`` is set
      -> the board (or plain lines) is redrawn from the tally every ``refresh`` seconds
      -> answers in flight finish (up to 5 s), then everything closes, whatever happened
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.live import Live

from stellwerk.config import Config
from stellwerk.gateway import Gateway
from stellwerk.sim import Outage, Profile, SimProvider
from stellwerk.telemetry import RequestFinished, StatsCollector

from .scenario import Scenario
from .tally import Tally
from .traffic import LoadGenerator
from .view import DeploymentInfo, Header, PlainPrinter, render_board, render_summary

__all__ = ["DemoResult", "DemoSettings", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoSettings:
    duration: float = 30.0
    """Seconds of traffic; 0 runs until ``stop`` is set (Ctrl-C)."""
    rps: float = 20.0
    """Requests per second sent to the gateway."""
    concurrency: int = 64
    """Most requests in flight at once; the schedule waits beyond that."""
    stream_share: float = 0.5
    """Share of requests that are streamed (0..1)."""
    port: int = 0
    """Gateway port on 127.0.0.1; 0 picks a free one."""
    seed: int = 0
    """Seeds the providers' randomness and the traffic mix."""
    live: bool = True
    """A live board (needs a terminal) or plain progress lines."""
    refresh: float = 0.25
    """Seconds between redraws of the live board."""
    plain_every: float = 1.0
    """Seconds between plain progress lines."""
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per provider, profile fields replacing the scenario's (e.g. a faster outage schedule)."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    tally: Tally
    stats: StatsCollector
    """The gateway's own counters."""
    elapsed: float
    sent: int


async def run_demo(
    settings: DemoSettings,
    *,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
    scenario: Scenario | None = None,
) -> DemoResult:
    """Run the demo until the duration is up or ``stop`` is set; print the summary; return what was seen."""
    console = console or Console()
    stop = stop or asyncio.Event()
    scenario = scenario or Scenario.load(seed=settings.seed, overrides=settings.overrides)
    sims = {name: SimProvider(profile) for name, profile in scenario.providers.items()}
    gateway: Gateway | None = None
    generator: LoadGenerator | None = None
    timer: asyncio.TimerHandle | None = None
    try:
        for sim in sims.values():
            await sim.start("127.0.0.1", 0)
        config = scenario.config({name: sim.base_url for name, sim in sims.items()})
        gateway = Gateway(config)
        await gateway.start("127.0.0.1", settings.port)
        header, schedules = _describe(config, scenario, sims, gateway.base_url, settings)

        origin = time.monotonic()
        for sim in sims.values():
            sim.reset()  # outage windows count from here, as the display does

        def clock() -> float:
            return time.monotonic() - origin

        tally = Tally(header.deployments, clock=clock, schedules=schedules)
        gateway.router.events.subscribe(tally.gateway, RequestFinished)
        generator = LoadGenerator(
            gateway.base_url, model=header.model, rps=settings.rps, concurrency=settings.concurrency,
            stream_share=settings.stream_share, seed=settings.seed, on_result=tally.client, clock=clock,
        )
        if settings.duration > 0:
            timer = asyncio.get_running_loop().call_later(settings.duration, stop.set)
        traffic = asyncio.create_task(generator.run(stop))
        try:
            if settings.live:
                await _show_live(console, header, tally, gateway.stats, traffic, stop, settings.refresh)
            else:
                await _show_plain(console.file, header, tally, gateway.stats, traffic, stop, settings.plain_every)
        finally:
            stop.set()
            await traffic
        elapsed = clock()
        gateway.router.events.flush()  # the stats take finished requests in batches: the last ones count too
        # The live board's last frame stays on screen with its events; plain output gets them in the summary.
        console.print(render_summary(header, tally, gateway.stats, elapsed, history=not settings.live))
        return DemoResult(tally, gateway.stats, elapsed, generator.sent)
    finally:
        if timer is not None:
            timer.cancel()
        if generator is not None:
            await generator.close()
        if gateway is not None:
            await gateway.close()
        for sim in sims.values():
            await sim.close()


async def _show_live(console: Console, header: Header, tally: Tally, stats: StatsCollector,
                     traffic: asyncio.Task[None], stop: asyncio.Event, refresh: float) -> None:
    def board() -> Any:
        size = console.size
        phase = "done" if traffic.done() else "stopping" if stop.is_set() else "running"
        return render_board(header, tally, stats, height=size.height, width=size.width, phase=phase)

    # auto_refresh=False: the board is drawn from this loop only, never from rich's refresh thread.
    with Live(board(), console=console, auto_refresh=False, vertical_overflow="crop") as live:
        while not traffic.done():
            if not stop.is_set():
                tally.tick()
            live.update(board(), refresh=True)
            await asyncio.wait({traffic}, timeout=refresh)
        live.update(board(), refresh=True)


async def _show_plain(out: IO[str], header: Header, tally: Tally, stats: StatsCollector,
                      traffic: asyncio.Task[None], stop: asyncio.Event, every: float) -> None:
    printer = PlainPrinter(header, tally, stats, out)
    printer.intro()
    loop = asyncio.get_running_loop()
    next_line = loop.time() + every
    while not traffic.done():
        if not stop.is_set():
            tally.tick()
        if loop.time() >= next_line:
            printer.update()
            next_line += every
        await asyncio.wait({traffic}, timeout=min(0.1, every))
    printer.update()


def _describe(config: Config, scenario: Scenario, sims: Mapping[str, SimProvider], gateway_url: str,
              settings: DemoSettings) -> tuple[Header, dict[str, tuple[Outage, ...]]]:
    """The header of the board and each deployment's outage schedule (found through its provider's URL)."""
    model = config.models[0]
    by_url = {sim.base_url: sim.profile for sim in sims.values()}
    info: dict[str, DeploymentInfo] = {}
    schedules: dict[str, tuple[Outage, ...]] = {}
    phrases: list[str] = []
    for d in model.deployments:
        profile: Profile | None = by_url.get(d.api_base or "")
        info[d.id] = DeploymentInfo(d.price.input_per_mtok, d.price.output_per_mtok,
                                    None if profile is None else profile.latency_ms)
        if profile is None:
            continue
        schedules[d.id] = profile.outages
        for o in profile.outages:
            every = f" every {o.every:g} s" if o.every is not None else ""
            phrases.append(f"{d.id} down {o.duration:g} s{every} from {o.start:g} s")
    header = Header(
        gateway_url=gateway_url, model=model.name, deployments=tuple(d.id for d in model.deployments),
        info=info, schedule="; ".join(phrases) or "none", rps=settings.rps, stream_share=settings.stream_share,
        duration=settings.duration,
    )
    return header, schedules


def default_console(live: bool) -> Console:
    """The console for the demo: stdout; plain mode never emits colour or cursor codes."""
    if live:
        return Console()
    return Console(file=sys.stdout, force_terminal=False, no_color=True, highlight=False, width=120)
