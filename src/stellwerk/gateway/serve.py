"""Running the gateway: build the router and the app, listen, shut down gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from stellwerk.config import Config
from stellwerk.errors import ConfigError
from stellwerk.http.client import Transport
from stellwerk.http.server import HTTPServer
from stellwerk.keys.governance import Governance
from stellwerk.routing import Router
from stellwerk.telemetry import Event, RequestFinished, StatsCollector

from .app import GatewayApp
from .errors import http_layer_error, stream_interrupted_event
from .guard import BrowserGuard

__all__ = ["Gateway", "run_gateway"]

log = logging.getLogger("stellwerk.gateway")
access_log = logging.getLogger("stellwerk.access")


def log_record(record: Event) -> None:
    """Listener: failed attempts at INFO, requests no deployment answered at WARNING, one access line at INFO."""
    if not isinstance(record, RequestFinished):
        return
    if record.attempts and log.isEnabledFor(logging.INFO):
        for attempt in record.attempts:
            log.info("request %s: attempt failed: %s", record.request_id, attempt.describe())
    if record.deployment is None and record.status >= 500:
        log.warning("request %s: model %s: no deployment answered (%d attempts)", record.request_id, record.model,
                    len(record.attempts))
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s model=%s deployment=%s status=%d attempts=%d latency_ms=%.1f tokens=%d/%d cost=%.8f",
            record.request_id, record.operation, record.model, record.deployment or "-", record.status,
            record.upstream_attempts, record.latency * 1000, record.usage.prompt_tokens,
            record.usage.completion_tokens, record.cost)


class Gateway:
    """A router, its app and its HTTP server, started and stopped together."""

    def __init__(self, config: Config, *, transport: Transport | None = None,
                 clock: Callable[[], float] | None = None, rng: random.Random | None = None,
                 allow_unauthenticated: bool = False) -> None:
        """``transport``, ``clock`` and ``rng`` are passed to the :class:`Router` (tests inject them).

        Keys, limits and the spend ledger are on with ``server.master_key`` (the ledger alone with
        ``server.store``). Without a master key, :meth:`start` refuses a non-loopback address unless
        ``allow_unauthenticated``.
        """
        self.config = config
        self.allow_unauthenticated = allow_unauthenticated
        self.stats = StatsCollector()
        server = config.server
        self.governance = Governance(server, config.keys) if server.master_key or server.store else None
        keyring = self.governance.keyring if self.governance is not None and self.governance.enforced else None
        options: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.router = Router(config, transport=transport, rng=rng, keyring=keyring, **options)
        self.router.events.subscribe(self.stats, RequestFinished)
        self.router.events.subscribe(log_record, RequestFinished)
        if self.governance is not None:
            self.router.events.subscribe(self.governance.ledger, RequestFinished)
        self.app = GatewayApp(self.router, self.stats, self.governance)
        server = config.server
        guarded = BrowserGuard(self.app, listen_host=server.host, allowed_hosts=server.allowed_hosts,
                               cors_origins=server.cors_origins)
        self.server = HTTPServer(
            guarded,
            max_body_size=server.max_body_size,
            keepalive_timeout=server.keepalive_timeout,
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            body_min_rate=server.body_min_rate,
            max_connections=server.max_connections,
            error_body=http_layer_error,
            interrupted_event=stream_interrupted_event,
        )

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        host = host if host is not None else self.config.server.host
        if self.config.server.master_key is None and not self.allow_unauthenticated and not is_loopback(host):
            raise ConfigError([
                f"server.host: refusing to listen on {host} without auth: anyone who reaches it could use every "
                "model and change the routing. Set server.master_key (e.g. ${STELLWERK_MASTER_KEY}), listen on "
                "127.0.0.1, or start with --allow-unauthenticated"])
        if self.governance is not None:
            await self.governance.start(self.router.accounts)
        await self.server.start(host, port if port is not None else self.config.server.port)
        self.router.start()

    async def close(self, grace: float | None = None) -> None:
        """Stop listening; in-flight requests get ``grace`` seconds (default ``server.shutdown_grace``)."""
        await self.server.close(self.config.server.shutdown_grace if grace is None else grace)
        await self.router.aclose()
        if self.governance is not None:
            await self.governance.close()


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _serve(config: Config, host: str | None, port: int | None, ready: Callable[[Gateway], None],
                 allow_unauthenticated: bool) -> None:
    gateway = Gateway(config, allow_unauthenticated=allow_unauthenticated)
    await gateway.start(host, port)
    ready(gateway)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await gateway.close()


def run_gateway(config: Config, host: str | None = None, port: int | None = None,
                allow_unauthenticated: bool = False) -> None:
    """Serve until SIGINT/SIGTERM. Uses uvloop when installed."""
    started = time.perf_counter()

    def ready(gateway: Gateway) -> None:
        shown_host = host if host is not None else config.server.host
        print(f"stellwerk gateway listening on http://{shown_host}:{gateway.port} "
              f"(models: {', '.join(gateway.router.models)}; ready in {time.perf_counter() - started:.3f}s)",
              flush=True)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(_serve(config, host, port, ready, allow_unauthenticated))
    else:
        uvloop.run(_serve(config, host, port, ready, allow_unauthenticated))
    sys.stdout.flush()
