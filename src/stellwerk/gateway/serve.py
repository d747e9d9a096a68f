"""Running the gateway: build the router and the app, listen, shut down gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stellwerk import __version__
from stellwerk.cluster import Cluster, ConfigNotices
from stellwerk.config import Config
from stellwerk.errors import ConfigError
from stellwerk.http.client import Transport
from stellwerk.http.server import HTTPServer, Request
from stellwerk.keys import Keyring
from stellwerk.keys.governance import Governance
from stellwerk.pipeline import Middleware
from stellwerk.routing import Router
from stellwerk.telemetry import BreakerChanged, RequestFinished, StatsCollector
from stellwerk.telemetry.access_log import AccessLog, open_sink
from stellwerk.telemetry.feed import LiveFeed
from stellwerk.telemetry.prometheus import Metrics

from .app import GatewayApp
from .config_api import ConfigAPI
from .console import Console
from .errors import http_layer_error, stream_interrupted_event
from .guard import BrowserGuard
from .watch import ConfigFile

if TYPE_CHECKING:
    from stellwerk.compose import Registries
    from stellwerk.telemetry.otel import Tracing

__all__ = ["Gateway", "run_gateway"]

log = logging.getLogger("stellwerk.gateway")
access_log = logging.getLogger("stellwerk.access")


def log_records(records: Sequence[RequestFinished]) -> None:
    """Batch listener: failed attempts at INFO, requests no deployment answered at WARNING, one access line at
    INFO each."""
    verbose = log.isEnabledFor(logging.INFO)
    access = access_log.isEnabledFor(logging.INFO)
    for record in records:
        if record.attempts and verbose:
            for attempt in record.attempts:
                log.info("request %s: attempt failed: %s", record.request_id, attempt.describe())
        if record.deployment is None and record.status >= 500:
            log.warning("request %s: model %s: no deployment answered (%d attempts)", record.request_id,
                        record.model, len(record.attempts))
        if access:
            access_log.info(
                "%s %s model=%s deployment=%s status=%d attempts=%d latency_ms=%.1f tokens=%d/%d cost=%.8f",
                record.request_id, record.operation, record.model, record.deployment or "-", record.status,
                record.upstream_attempts, record.latency * 1000, record.usage.prompt_tokens,
                record.usage.completion_tokens, record.cost)


class Gateway:
    """A router, its app and its HTTP server, started and stopped together."""

    def __init__(self, config: Config, *, transport: Transport | None = None,
                 clock: Callable[[], float] | None = None, rng: random.Random | None = None,
                 registries: Registries | None = None,
                 middlewares: Mapping[str, Sequence[Middleware]] | None = None,
                 source: str | os.PathLike[str] | None = None, allow_unauthenticated: bool = False) -> None:
        """Everything but ``config`` is passed to the :class:`Router`: ``registries`` (your own providers and
        strategies), ``middlewares`` by pipeline stage, and ``transport``, ``clock`` and ``rng`` (tests).

        ``source``: the config file, watched and read again on SIGHUP. Keys, limits and the spend ledger are
        on with ``server.master_key`` (the ledger alone with ``server.store``). Without a master key,
        :meth:`start` refuses a non-loopback address unless ``allow_unauthenticated``.
        """
        self.config = config
        self.allow_unauthenticated = allow_unauthenticated
        self.stats = StatsCollector()
        server = config.server
        self.governance = Governance(server, config.keys) if server.master_key or server.store else None
        keyring = self.governance.keyring if self.governance is not None and self.governance.enforced else None
        options: dict[str, Any] = {"clock": clock} if clock is not None else {}
        tracing: list[Middleware] = []
        sink = open_sink(server.access_log)
        self.access_log = None if sink is None else AccessLog(
            sink, wall_clock=time.time, log_payloads=server.log_payloads, owns_sink=server.access_log != "stdout")
        if self.access_log is not None and server.log_payloads:
            tracing.append(self.access_log.capture)
        self.tracer_provider: Any = None
        """The OpenTelemetry SDK's tracer provider when ``server.otel`` is set (shut down, flushing, at close)."""
        spans: Tracing | None = None
        if server.otel is not None:
            try:
                from stellwerk.telemetry.otel import KINDS, Tracing, tracer_provider
            except ImportError:
                raise ConfigError(["server.otel: needs the OpenTelemetry SDK: pip install 'stellwerk[otel]'"]) from None
            self.tracer_provider = tracer_provider(server.otel)
            spans = Tracing(self.tracer_provider.get_tracer("stellwerk"), lambda: self.router.table)
            tracing.insert(0, spans.middleware)
        stages = dict(middlewares or {})
        stages["tracing"] = [*tracing, *stages.get("tracing", ())]  # the request span encloses the others
        self.cluster = None if server.redis is None else Cluster(server.redis, prefix=server.redis_prefix,
                                                                 timeout=server.redis_timeout)
        """This replica's link to the others (``server.redis``), started with the gateway."""
        self.router = Router(config, transport=transport, rng=rng, registries=registries, middlewares=stages,
                             keyring=keyring, cluster=self.cluster, **options)
        events = self.router.events
        if spans is not None:
            events.subscribe(spans, *KINDS)
        if self.governance is not None:  # at once: the ledger journals a record before its answer is sent
            events.subscribe(self.governance.ledger, RequestFinished)
        events.subscribe_batches(self.stats.take)  # the aggregators take records in batches (telemetry.events)
        events.subscribe_batches(log_records)
        cache = self.router.response_cache
        self.metrics = Metrics(lambda: self.router.table, version=__version__,
                               cache_counts=cache.counts if cache is not None else None,
                               per_key=server.metrics_per_key)
        events.subscribe_batches(self.metrics.take)
        if self.access_log is not None:
            events.subscribe_batches(self.access_log.take)
        self.feed = LiveFeed(lambda: self.router.table, wall_clock=time.time)
        events.subscribe_batches(self.feed.take)
        events.subscribe(self.feed, BreakerChanged)
        from stellwerk.compose import load_file, load_text

        self.config_file = None if source is None else ConfigFile(
            source, self.router, lambda path: load_file(path, registries=registries))
        """The file this gateway was started from: watched, and read again on SIGHUP (None: not from a file)."""
        config_api = ConfigAPI(self.router, lambda text, where: load_text(text, source=where, registries=registries),
                               self.config_file.reload if self.config_file is not None else None,
                               _author_of(keyring))
        self._watching: asyncio.Task[None] | None = None
        if self.governance is not None:  # versions are kept in the store; a restart keeps the API's edits
            store = self.governance.store
            self.router.configuration.persist(store.put_config_version_now, store.latest_config_version_now())
        if self.cluster is not None:  # after persist: the notices chain the store's hook
            ConfigNotices(self.cluster, self.router.configuration)
        self.app = GatewayApp(self.router, self.stats, self.metrics, Console(self.feed), config_api, self.governance,
                              public_metrics=server.metrics_public)
        guarded = BrowserGuard(self.app, listen_host=server.host, allowed_hosts=server.allowed_hosts,
                               cors_origins=server.cors_origins,
                               public_paths=("/metrics",) if server.metrics_public else ())
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

    async def start(self, host: str | None = None, port: int | None = None, reuse_port: bool = False) -> None:
        """Listen (``reuse_port``: one of several worker processes on the same port)."""
        host = host if host is not None else self.config.server.host
        if self.config.server.master_key is None and not self.allow_unauthenticated and not is_loopback(host):
            raise ConfigError([
                f"server.host: refusing to listen on {host} without auth: anyone who reaches it could use every "
                "model and change the routing. Set server.master_key (e.g. ${STELLWERK_MASTER_KEY}), listen on "
                "127.0.0.1, or start with --allow-unauthenticated"])
        if self.governance is not None:
            await self.governance.start(self.router.accounts)
        if self.cluster is not None:
            await self.cluster.start()
        if any(d.context_window is not None for m in self.config.models for d in m.deployments):
            from stellwerk.tokens import warm

            await asyncio.to_thread(warm)  # before listening: the first request does not wait ~0.6 s for it
        await self.server.start(host, port if port is not None else self.config.server.port, reuse_port)
        self.router.start()
        if self.config_file is not None:
            self._watching = asyncio.ensure_future(self.config_file.watch())

    async def close(self, grace: float | None = None) -> None:
        """Stop listening; in-flight requests get ``grace`` seconds (default ``server.shutdown_grace``)."""
        self.feed.close()  # dashboards' event streams end now rather than holding the shutdown
        if self._watching is not None:
            self._watching.cancel()
        await self.server.close(self.config.server.shutdown_grace if grace is None else grace)
        await self.router.aclose()
        if self.cluster is not None:
            await self.cluster.close()
        if self.access_log is not None:
            self.access_log.close()
        if self.tracer_provider is not None:
            await asyncio.to_thread(self.tracer_provider.shutdown)  # exports what is left (blocking I/O)
        if self.governance is not None:
            await self.governance.close()


def _author_of(keyring: Keyring | None) -> Callable[[Request], str | None]:
    """Who changes the configuration: the admin key's id (the app has checked it already), else nobody."""
    if keyring is None:
        return lambda request: None
    from stellwerk.pipeline.auth import principal_of

    return lambda request: principal_of(keyring, request.headers).key_id


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
                 source: str | None, allow_unauthenticated: bool, reuse_port: bool) -> None:
    gateway = Gateway(config, source=source, allow_unauthenticated=allow_unauthenticated)
    await gateway.start(host, port, reuse_port)
    ready(gateway)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if gateway.config_file is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, gateway.config_file)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await gateway.close()


def _reload(config_file: ConfigFile) -> None:
    """SIGHUP: read the config file again (a refusal is logged; the running version stays)."""
    with contextlib.suppress(ConfigError):
        config_file.reload()


def run_gateway(config: Config, host: str | None = None, port: int | None = None, source: str | None = None,
                allow_unauthenticated: bool = False, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; ``source``: the config file, watched and read again on SIGHUP. Uses uvloop.
    ``reuse_port``: one worker of ``stellwerk serve --workers N`` (:mod:`stellwerk.cluster.workers`)."""
    started = time.perf_counter()

    def ready(gateway: Gateway) -> None:
        shown_host = host if host is not None else config.server.host
        print(f"stellwerk gateway listening on http://{shown_host}:{gateway.port} "
              f"(models: {', '.join(gateway.router.models)}; ready in {time.perf_counter() - started:.3f}s)",
              flush=True)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(_serve(config, host, port, ready, source, allow_unauthenticated, reuse_port))
    else:
        uvloop.run(_serve(config, host, port, ready, source, allow_unauthenticated, reuse_port))
    sys.stdout.flush()
