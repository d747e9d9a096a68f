"""Active health checks, budgeted: probe only what passive health cannot see.

Every ``health_check.interval`` seconds each deployment of a model with
``health_check`` configured is probed — unless real traffic already answered
successfully within the interval and its breaker is closed (``skip_if_busy``):
a busy, healthy deployment needs no synthetic traffic, which keeps probes off
the bill. Probes find a dead deployment before a user request does (its
breaker is opened until the next probe) and give traffic back to a recovered
one as soon as a probe succeeds (its breaker is closed).

Probe kinds: ``models`` (GET the provider's models endpoint: free) or ``chat``
(a one-token chat: proves the model itself answers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from stellwerk.config import HealthCheckOptions
from stellwerk.errors import UpstreamError
from stellwerk.http.client import Transport, TransportError
from stellwerk.providers.redact import redact

from . import operations
from .deployment import Deployment, ModelGroup
from .send import classify, read_body, send, transport_error

__all__ = ["HealthProber"]

log = logging.getLogger("stellwerk.health")


class HealthProber:
    def __init__(self, groups: list[ModelGroup], transport: Transport, clock: Callable[[], float]) -> None:
        self._groups = [g for g in groups if g.config.health_check is not None]
        self._transport = transport
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self.probes = 0
        self.skipped = 0

    def start(self) -> None:
        for group in self._groups:
            for dep in group.deployments:
                self._tasks.append(asyncio.ensure_future(self._loop(group, dep)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, group: ModelGroup, dep: Deployment) -> None:
        options = group.config.health_check
        assert options is not None
        while True:
            await self.probe_once(dep, options)
            await asyncio.sleep(options.interval)

    async def probe_once(self, dep: Deployment, options: HealthCheckOptions) -> bool | None:
        """Probe one deployment now; returns the result, or None when the budget skipped it."""
        now = self._clock()
        if options.skip_if_busy and dep.breaker.available() and dep.breaker.state.value == "closed" \
                and now - dep.health.last_success < options.interval:
            self.skipped += 1
            return None
        self.probes += 1
        error = await self._request(dep, options)
        dep.health.probe_at = self._clock()
        dep.health.probe_ok = error is None
        dep.health.probe_error = error
        if error is None:
            if dep.breaker.state.value != "closed":
                log.info("health check: %s answers again; closing its breaker", dep.id)
            dep.breaker.recover()
            return True
        log.warning("health check: %s failed: %s", dep.id, error)
        dep.breaker.force_open(options.interval)
        return False

    async def _request(self, dep: Deployment, options: HealthCheckOptions) -> str | None:
        try:
            if options.kind == "chat":
                body = {"model": dep.config.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
                await operations.complete(self._transport, self._clock, dep, body, options.timeout)
                return None
            endpoint = dep.endpoint
            response = await send(self._transport, _get(endpoint.models_url, endpoint.json_headers),
                                  options.timeout, min(options.timeout, dep.config.connect_timeout))
            data = await read_body(response, options.timeout)
            if 200 <= response.status < 300:
                return None
            return classify(dep.adapter, endpoint.secrets, response.status, response.headers, data).message
        except UpstreamError as err:
            return redact(err.message, dep.endpoint.secrets)
        except TransportError as err:
            return redact(transport_error(err, options.timeout).message, dep.endpoint.secrets)


def _get(url: str, headers: bytes) -> operations.UpstreamRequest:
    return operations.UpstreamRequest("GET", url, headers, b"")
