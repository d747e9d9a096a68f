"""``stellwerk demo``: the gateway and three simulated providers, one failing on a schedule, under live traffic.

No API keys, no network: everything runs in this process, in one event loop,
on 127.0.0.1. The traffic goes over HTTP through the gateway, as any client's
would, and the board shows which deployment answered, the failovers while the
primary is down, latency and cost.

Modules: :mod:`~stellwerk.demo.scenario` (``demo.yaml``: providers and gateway config),
:mod:`~stellwerk.demo.traffic` (the HTTP client load), :mod:`~stellwerk.demo.tally`
(what was seen), :mod:`~stellwerk.demo.view` (board, lines, summary),
:mod:`~stellwerk.demo.runner` (wiring it together).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

from .runner import DemoResult, DemoSettings, default_console, run_demo

__all__ = ["DemoResult", "DemoSettings", "add_arguments", "run", "run_demo"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of traffic, 0 = until Ctrl-C (default: %(default)g)")
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second (default: %(default)g)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="most requests in flight at once (default: %(default)s)")
    parser.add_argument("--stream-share", type=float, default=0.5,
                        help="share of requests that are streamed, 0..1 (default: %(default)g)")
    parser.add_argument("--port", type=int, default=0,
                        help="gateway port on 127.0.0.1, 0 = any free port (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the providers and the traffic mix")
    parser.add_argument("--no-live", action="store_true",
                        help="plain progress lines instead of the live board (automatic when stdout is not a terminal)")


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code (0; 1 if it cannot listen; 2 for invalid options)."""
    problems = []
    if args.duration < 0:
        problems.append("--duration must be >= 0")
    if args.rps <= 0:
        problems.append("--rps must be > 0")
    if args.concurrency < 1:
        problems.append("--concurrency must be >= 1")
    if not 0 <= args.stream_share <= 1:
        problems.append("--stream-share must be between 0 and 1")
    if not 0 <= args.port <= 65535:
        problems.append("--port must be between 0 and 65535")
    if problems:
        print("demo: " + "; ".join(problems), file=sys.stderr)
        return 2
    live = not args.no_live and sys.stdout.isatty()
    settings = DemoSettings(duration=args.duration, rps=args.rps, concurrency=args.concurrency,
                            stream_share=args.stream_share, port=args.port, seed=args.seed, live=live)
    with _quiet_gateway_logs():
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is absent on Windows
            runner = asyncio.run
        else:
            runner = uvloop.run
        try:
            runner(_main(settings))
        except OSError as err:  # e.g. --port already in use
            print(f"demo: {err}", file=sys.stderr)
            return 1
    return 0


async def _main(settings: DemoSettings) -> DemoResult:
    """Ctrl-C (or SIGTERM) ends the traffic early; the summary is still printed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        return await run_demo(settings, console=default_console(settings.live), stop=stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _quiet_gateway_logs() -> Iterator[None]:
    """The board reports failed attempts and health itself; the gateway's warnings would tear it apart.

    Only when nobody asked for more (``--log-level INFO`` or ``DEBUG`` keeps them).
    """
    loggers = [logging.getLogger(name) for name in ("stellwerk.gateway", "stellwerk.health")]
    if loggers[0].getEffectiveLevel() < logging.WARNING:
        yield
        return
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.setLevel(level)
