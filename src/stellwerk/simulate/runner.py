"""One simulation: a config and a scenario in, a report out.

    VirtualLoop (virtual time from 0)
      -> simulated providers for every deployment; the config pointed at them   (upstreams.py)
      -> the real Router on that config: transport=SimTransport, clock=loop.time, sleep=loop.sleep,
         rng=Random(seed), in-memory state and cache; its health checks started
      -> each arrival (traffic.py) sent at its virtual time as the library API sends it: chat, chat_stream
         (read to the end) or embeddings; errors are the router's own answers
      -> the Recorder hears RequestFinished / AttemptStarted / BreakerChanged     (recorder.py)
      -> after the last answer, the router closes and the report is built      (report.py)

Nothing here replaces routing code: the planner, strategies, attempt loop, breakers,
budgets, hedging and stream resume are the router's. Only the network and the clock are
simulated, so the run takes CPU time, not wall time, and is the same for the same seed.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from stellwerk.config import Config
from stellwerk.errors import StellwerkError
from stellwerk.routing import Router
from stellwerk.state import MemoryCache, MemoryStateStore

from .clock import VirtualLoop
from .recorder import Recorder
from .report import build_report
from .scenario import Scenario, ScenarioError
from .traffic import Arrival, arrivals
from .transport import SimTransport
from .upstreams import simulated

__all__ = ["check_deployments", "drive", "load_config", "simulate"]

_EPOCH = 1_767_225_600.0
"""Wall-clock time of virtual 0 (2026-01-01 UTC), for the ``created`` fields of simulated answers."""
_FILLER = " the" * 1_000_000
"""Prompt text: one token per four characters, by the router's tokenizer and the simulated providers' estimate."""


class _Placeholders(Mapping[str, str]):
    """The environment for loading a config to simulate: every ``${VAR}`` that is unset becomes ``simulated``.

    Keys are never needed (nothing leaves the process), so a config can be tried without them.
    """

    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, "simulated")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in os.environ or _looks_secret(name))

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"))


def load_config(path: str | Path) -> Config:
    """The config at ``path``; unset variables that name keys or secrets are filled in (see :class:`_Placeholders`)."""
    from stellwerk.compose import load_file

    return load_file(path, env=_Placeholders())


def check_deployments(scenario: Scenario, configs: Sequence[Config]) -> None:
    """A :class:`ScenarioError` for a deployment in the scenario that none of ``configs`` has (a typo)."""
    known = {d.id for config in configs for m in config.models for d in m.deployments}
    unknown = sorted(set(scenario.deployments) - known)
    if unknown:
        raise ScenarioError(f"{scenario.source}: deployments.{unknown[0]}: no such deployment in the config; "
                            f"expected one of {sorted(known)}")


def simulate(config: Config, scenario: Scenario, *, seed: int = 0, name: str = "config",
             check: bool = True) -> dict[str, Any]:
    """Run the scenario against the config in virtual time; the report (see :mod:`~stellwerk.simulate.report`).

    ``check=False`` skips :func:`check_deployments` (when comparing configs, the caller checks against all)."""
    if check:
        check_deployments(scenario, [config])
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(_run(config, scenario, seed, name))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _run(config: Config, scenario: Scenario, seed: int, name: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualLoop)
    clock = loop.time
    world = simulated(config, scenario, seed=seed, clock=clock, wall_clock=lambda: _EPOCH + clock(), sleep=loop.sleep)
    models = [m.name for m in config.models]
    for share in scenario.traffic.models:
        if share.model not in models:
            raise ScenarioError(f"{scenario.source}: traffic.models.{share.model}: no such model in the config; "
                                f"expected one of {models}")
    recorder = Recorder(clock)
    router = Router(world.config, transport=SimTransport(world.upstreams, loop), clock=clock, rng=random.Random(seed),
                    sleep=loop.sleep, state=MemoryStateStore(clock), cache=MemoryCache(clock))
    router.events.subscribe(recorder, *Recorder.kinds)
    router.start()
    try:
        await drive(router, arrivals(scenario.traffic, scenario.duration, models, random.Random(seed)), clock,
                    loop.sleep)
    finally:
        await router.aclose()
    violations = {d: len(u.violations) for d, u in world.by_deployment.items() if u.rpm is not None}
    return build_report(recorder, scenario, list(world.by_deployment), config=name, seed=seed,
                        limit_violations=violations)


async def drive(router: Router, requests: Iterator[Arrival], clock: Callable[[], float],
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Send each request at its time on ``clock`` (virtual, or the wall clock for a real run) and wait for every
    answer; a request for a model the router does not have is a :class:`ScenarioError`."""
    loop = asyncio.get_running_loop()
    models = set(router.models)
    pending: set[asyncio.Task[None]] = set()
    for number, arrival in enumerate(requests):
        if arrival.model not in models:
            raise ScenarioError(f"traffic: model {arrival.model!r} is not in the config; expected one of {sorted(models)}")
        wait = arrival.time - clock()
        if wait > 0:
            await sleep(wait)
        task = loop.create_task(_send(router, arrival, number))
        pending.add(task)
        task.add_done_callback(pending.discard)
    while pending:
        await asyncio.wait(set(pending))


async def _send(router: Router, arrival: Arrival, number: int) -> None:
    """One request as a client of the library sends it; its outcome is heard by the recorder."""
    text = f"{number}:" + _FILLER[: 4 * max(1, arrival.prompt_tokens - 8)]
    request_id = f"sim-{number}"
    try:
        if arrival.operation == "embeddings":
            await router.embeddings(model=arrival.model, input=text, request_id=request_id)
        elif arrival.stream:
            stream = await router.chat_stream(model=arrival.model, messages=[{"role": "user", "content": text}],
                                              max_tokens=arrival.output_tokens, request_id=request_id)
            async for _ in stream.sse():
                pass
        else:
            await router.chat(model=arrival.model, messages=[{"role": "user", "content": text}],
                              max_tokens=arrival.output_tokens, request_id=request_id)
    except StellwerkError:
        pass  # the router's answer to the client; RequestFinished carries its status
