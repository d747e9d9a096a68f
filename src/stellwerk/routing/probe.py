"""Active health checks, budgeted: probe only what passive health cannot see.

Every ``health_check.interval`` seconds each deployment of a model with
``health_check`` configured is probed — unless real traffic already answered
successfully within the interval and its breaker is closed (``skip_if_busy``):
a busy, healthy deployment needs no synthetic traffic, which keeps probes off
the bill. Probes find a dead deployment before a user request does (its
breaker is opened until the next probe) and give traffic back to a recovered
one as soon as a probe succeeds (its breaker is closed).

Probe kinds: ``models`` (GET the provider's models endpoint: free) or ``chat``
(a one-token chat: proves the model itself answers). A probe holds a
:class:`~.lease.Lease` like any attempt, and settles it with its verdict.
The prober reads the router's current routing table at every round, and its
clock and sleep are injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from stellwerk.config import HealthCheckOptions
from stellwerk.errors import UpstreamError
from stellwerk.http.transport import Transport, TransportError
from stellwerk.providers import UpstreamRequest
from stellwerk.redact import redact
from stellwerk.telemetry import Events

from .deployment import Deployment
from .lease import Lease
from .send import classify, read_body, send, transport_error
from .table import RoutingTable

__all__ = ["HealthProber"]


class HealthProber:
    def __init__(self, table: Callable[[], RoutingTable], transport: Transport, *, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]], events: Events) -> None:
        self._table = table
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._events = events
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.probes = 0
        self.skipped = 0

    def start(self) -> None:
        """Probe every deployment of every model that configures health checks (each on its own schedule)."""
        for model in self._table().models.values():
            if model.config.health_check is None:
                continue
            for dep in model.group.deployments:
                if dep.id not in self._tasks:
                    self._tasks[dep.id] = asyncio.ensure_future(self._loop(dep.id))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, dep_id: str) -> None:
        while True:
            dep = self._table().deployments.get(dep_id)
            options = self._table().models[dep.model].config.health_check if dep is not None else None
            if dep is None or options is None:
                return  # gone from the configuration
            await self.probe_once(dep, options)
            await self._sleep(options.interval)

    async def probe_once(self, dep: Deployment, options: HealthCheckOptions) -> bool | None:
        """Probe one deployment now; returns the result, or None when the budget skipped it."""
        now = self._clock()
        if options.skip_if_busy and dep.breaker.available() and dep.breaker.state.value == "closed" \
                and now - dep.health.last_success < options.interval:
            self.skipped += 1
            return None
        self.probes += 1
        lease = Lease(dep, clock=self._clock, events=self._events, request_id="health-check")
        try:
            error = await self._request(dep, options)
        except BaseException:
            lease.release()
            raise
        lease.probed(error, options.interval)
        return error is None

    async def _request(self, dep: Deployment, options: HealthCheckOptions) -> str | None:
        try:
            if options.kind == "chat":
                body = {"model": dep.config.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
                wire = dep.adapter.chat_request(dep.config, dep.endpoint, body, False)
            else:
                wire = UpstreamRequest("GET", dep.endpoint.models_url, dep.endpoint.json_headers, b"")
            response = await send(self._transport, wire, options.timeout,
                                  min(options.timeout, dep.config.connect_timeout))
            data = await read_body(response, options.timeout)
            if 200 <= response.status < 300:
                if options.kind == "chat":
                    dep.adapter.chat_response(dep.config, data)  # raises UpstreamError for a malformed answer
                return None
            return classify(dep.adapter, dep.endpoint.secrets, response.status, response.headers, data).message
        except UpstreamError as err:
            return redact(err.message, dep.endpoint.secrets)
        except TransportError as err:
            return redact(transport_error(err, options.timeout).message, dep.endpoint.secrets)
