"""The configuration contract: typed, strict, every field documented with its default.

Unknown keys are errors. Types and ranges are checked by msgspec; cross-field
rules (unique names, known providers and strategies) by :func:`check`, which
lists every problem it finds, each as ``key: what was expected``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from stellwerk.resilience.backoff import BackoffOptions
from stellwerk.resilience.breaker import BreakerOptions
from stellwerk.resilience.budget import RetryBudgetOptions
from stellwerk.state.records import Budget

__all__ = [
    "CacheOptions",
    "Config",
    "DeploymentConfig",
    "HealthCheckOptions",
    "HedgeOptions",
    "KeyConfig",
    "ModelConfig",
    "OtelOptions",
    "Price",
    "ServerCacheConfig",
    "ServerConfig",
]

Seconds = Annotated[float, Meta(gt=0, le=86400)]
NonNegative = Annotated[float, Meta(ge=0)]
Name = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._:/@+-]+$")]


class Price(Struct, frozen=True, forbid_unknown_fields=True):
    """Price of a deployment in US dollars per million tokens."""

    input_per_mtok: NonNegative = 0.0
    """Dollars per million prompt (input) tokens. Default 0."""
    output_per_mtok: NonNegative = 0.0
    """Dollars per million completion (output) tokens. Default 0."""


class DeploymentConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One upstream that can answer for a model: a provider, an endpoint and a model name there."""

    id: Name
    """Unique in the file; reported in ``x-stellwerk-deployment``. Required."""
    provider: str
    """Wire protocol of the upstream: ``openai`` (any OpenAI-compatible server), ``azure``, ``anthropic``,
    ``gemini``, ``ollama`` or ``bedrock`` (or another registered provider). Required."""
    model: Annotated[str, Meta(min_length=1)]
    """The upstream's model name (for ``azure``: the deployment name). Required."""
    api_base: str | None = None
    """Base URL, as the provider's official SDK's ``base_url``. Default: the provider's public endpoint."""
    api_key: str | None = None
    """Credential sent upstream. Use ``${ENV_VAR}``; never logged or returned. For ``bedrock``, a Bedrock
    API key (sent as a bearer token instead of signing requests)."""
    api_version: str | None = None
    """``azure`` only: the ``api-version`` query parameter. Default ``2024-10-21``."""
    region: str | None = None
    """``bedrock`` only, required there: the AWS region (``us-east-1``; ``${AWS_REGION}`` takes it from the
    environment). Chooses ``bedrock-runtime.{region}.amazonaws.com`` and signs requests for it."""
    aws_access_key_id: str | None = None
    """``bedrock`` only: the access key id requests are signed with (SigV4), with ``aws_secret_access_key``.
    Default: botocore's default credential chain (environment, ``~/.aws``, instance role…)."""
    aws_secret_access_key: str | None = None
    """``bedrock`` only: the secret of ``aws_access_key_id``. Use ``${ENV_VAR}``; never logged or returned."""
    aws_session_token: str | None = None
    """``bedrock`` only: a session token for temporary credentials. Default none."""
    headers: dict[str, str] = {}
    """Extra headers sent upstream with every request (e.g. ``OpenAI-Organization``)."""
    enabled: bool = True
    """False drains the deployment: no new requests go to it, those in flight finish. Default true."""
    weight: NonNegative = 1.0
    """Relative share of traffic for weighted strategies. Default 1."""
    price: Price = Price()
    """Prices used to compute the cost of every request. Default 0/0."""
    timeout: Seconds | None = None
    """Seconds per attempt on this deployment; overrides the model's ``timeout``."""
    connect_timeout: Seconds = 5.0
    """Seconds to open a connection to the upstream. Default 5."""
    stream_usage: bool = True
    """Ask the upstream for a usage chunk on streams (``stream_options.include_usage``) so that cost
    is exact; turn off for servers that reject ``stream_options``. Default true."""
    default_max_tokens: Annotated[int, Meta(ge=1)] = 4096
    """``anthropic`` only: the ``max_tokens`` sent when the client's request names none (the Messages
    API requires one; OpenAI's does not). Default 4096."""
    max_in_flight: Annotated[int, Meta(ge=1)] | None = None
    """Bulkhead: at most this many requests in flight here; beyond it, requests spill to the next
    deployment instead of queueing. Default: unlimited."""
    context_window: Annotated[int, Meta(ge=1)] | None = None
    """Tokens this deployment's model accepts (prompt + output). Prompts that cannot fit skip it.
    Default: unknown (never skipped before trying)."""
    priority: int = 0
    """``failover``: lower is tried first; ties keep the listed order. Default 0."""
    tier: int = 0
    """Quality tier (higher is better) for ``cost``'s ``min_tier`` floor. Default 0."""
    tags: dict[str, str] = {}
    """Labels such as ``region: eu`` that requests can require (``x-stellwerk-tags: region=eu``)."""
    rpm: Annotated[int, Meta(ge=1)] | None = None
    """Requests per minute this deployment may take; ``usage-aware`` routes around it before a 429."""
    tpm: Annotated[int, Meta(ge=1)] | None = None
    """Tokens per minute this deployment may take."""
    supports_tools: bool = True
    """Whether the model can call tools; requests with ``tools`` skip it otherwise. Default true."""
    supports_vision: bool = True
    """Whether the model accepts images. Default true."""
    supports_completions: bool = False
    """Serves the legacy ``/completions`` API (openai and azure only): ``/v1/completions`` requests are sent
    to it as they are, instead of as chat. Default false."""
    native_responses: bool = False
    """Serves OpenAI's Responses API itself (openai and azure only): ``/v1/responses`` requests are forwarded to
    its ``/responses`` unchanged (the model replaced), and its answers and event streams to the client as they
    come; requests continuing a stored response (``previous_response_id``) still go by translation. Default
    false: translated to chat."""
    supports_json: bool = True
    """Whether the model honours ``response_format`` JSON modes. Default true."""
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    """Largest answer the model can produce. Default unknown."""
    proxy: str | None = None
    """HTTP proxy for this deployment, ``http://[user:password@]host:port`` (CONNECT for https
    upstreams, absolute-form requests for http ones), or ``direct`` for none. Default: ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` and ``NO_PROXY`` from the environment, matched as curl does."""
    ca_file: str | None = None
    """PEM file of CA certificates trusted for this deployment *in addition to* the system store (a
    private CA). Default: the system store only."""
    resume: str | None = None
    """How a stream that broke off elsewhere is continued here: ``prefill`` (the partial answer as
    a trailing assistant message, continued by the model), ``instruct`` (partial answer plus an
    instruction to continue) or ``off``. Default: ``prefill`` for providers that support it natively
    (anthropic, ollama), else ``instruct``."""


class HedgeOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Hedged requests: if the first attempt has not produced its first token after a delay,
    start another on a different deployment; the first to answer wins, the other is cancelled."""

    delay: Seconds | None = None
    """Fixed delay in seconds. Default: from the deployment's observed time to first token."""
    quantile: Annotated[float, Meta(ge=0.5, le=0.999)] = 0.9
    """Which quantile of observed time-to-first-token is the delay when ``delay`` is not set. Default 0.9."""
    min_delay: Seconds = 0.05
    """Lower bound of an observed delay, in seconds. Default 0.05."""
    max_hedges: Annotated[int, Meta(ge=1, le=3)] = 1
    """Extra attempts at most per request. Default 1."""


class HealthCheckOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Active health checks: a cheap request per deployment on an interval, budgeted."""

    interval: Seconds = 10.0
    """Seconds between probes of one deployment. Default 10."""
    timeout: Seconds = 5.0
    """Seconds a probe may take. Default 5."""
    kind: str = "models"
    """``models`` (GET the provider's models endpoint: free) or ``chat`` (a 1-token chat: proves
    the model answers, costs a few tokens). Default ``models``."""
    skip_if_busy: bool = True
    """Budget: skip the probe when real traffic answered successfully within the interval (passive
    health already knows). Default true."""


class CacheOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Response caching of one model (``models[].cache``). Only complete, successful chat answers are stored."""

    mode: Literal["off", "exact", "semantic"] = "off"
    """``off``; ``exact`` (the same request, in canonical form, gets the stored answer); ``semantic`` (also a
    last user message that means the same, found by a local embedder and checked by a guard; everything
    else must match exactly). Default ``off``."""
    ttl: Seconds = 3600.0
    """Seconds an answer is kept; a request may set its own with ``x-stellwerk-cache-ttl``. Default 3600."""
    scope: Literal["key", "team", "global"] = "key"
    """Who shares entries: ``key`` (the caller's API key), ``team`` (the key's team; a key without one is
    its own team) or ``global`` (everyone). While gateway auth is off every caller is ``anonymous``, so
    ``key`` and ``team`` then share among all callers. Default ``key``."""
    threshold: Annotated[float, Meta(ge=0, le=1)] | None = None
    """``semantic`` only: the cosine similarity a stored prompt needs for a semantic hit. Default 0.90
    (precision and recall on bench/cache: bench/RESULTS.md)."""


class ModelConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A model name clients ask for, and the deployments that can answer it."""

    name: Name
    """What clients put in ``model``. Unique. Required."""
    deployments: Annotated[list[DeploymentConfig], Meta(min_length=1)]
    """At least one. Required."""
    strategy: str = "failover"
    """How deployments are ordered: ``failover``, ``weighted``, ``weighted-random``, ``least-busy``,
    ``latency``, ``throughput``, ``cost``, ``usage-aware``, ``ab``, ``task``. Default ``failover``."""
    strategy_options: dict[str, Any] = {}
    """Options of the strategy (each strategy documents its own keys; unknown keys are errors)."""
    require_tags: dict[str, str] = {}
    """Tags every deployment serving this model must carry (requests may require more)."""
    timeout: Seconds = 30.0
    """Seconds per upstream attempt (to the complete answer, or to the first byte of a stream). Default 30."""
    retries: Annotated[int, Meta(ge=0, le=10)] = 1
    """Extra attempts one deployment may get within a request after a transient failure. A retry
    prefers a deployment not yet tried; repeated attempts on one deployment back off. Default 1."""
    deadline: Seconds = 120.0
    """Seconds for the whole request, all attempts and fallbacks included; a client may lower it
    with the ``x-stellwerk-timeout`` header. Default 120."""
    ttft_timeout: Seconds | None = None
    """Streams: seconds to the first chunk of an attempt. Default: ``timeout``."""
    idle_timeout: Seconds | None = None
    """Streams: longest silence between chunks. Default: ``timeout``."""
    backoff: BackoffOptions = BackoffOptions()
    """Waits before repeating an attempt on the same deployment."""
    retry_budget: RetryBudgetOptions = RetryBudgetOptions()
    """Bounds retries and hedges per model and per deployment."""
    breaker: BreakerOptions = BreakerOptions()
    """Circuit breaker of each deployment."""
    panic_threshold: Annotated[float, Meta(ge=0, le=1)] = 0.5
    """When fewer than this share of deployments are healthy, health is ignored rather than failing
    everything (Envoy's panic mode). Default 0.5."""
    fallbacks: list[Name] = []
    """Other models to try, in order, when no deployment of this one could answer."""
    context_window_fallbacks: list[Name] = []
    """Models to try when the prompt is too long for every deployment of this one."""
    content_policy_fallbacks: list[Name] = []
    """Models to try when a provider refused the content."""
    hedge: HedgeOptions | None = None
    """Hedged requests (opt-in). Default off."""
    resume_streams: bool = True
    """Continue a stream that broke off mid-answer on another deployment. Default true."""
    health_check: HealthCheckOptions | None = None
    """Active health checks of this model's deployments (opt-in). Default off: passive only."""
    cache: CacheOptions = CacheOptions()
    """Response caching of this model. Default off."""


class ServerCacheConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where cached responses live (``server.cache``); which models cache is set per model."""

    backend: Literal["memory", "redis"] | None = None
    """``memory`` (this process: an LRU bounded by ``max_bytes``) or ``redis`` (shared by replicas; Redis
    bounds itself with its own ``maxmemory``). Default ``redis`` at ``server.redis`` when that is set, else
    ``memory``."""
    max_bytes: Annotated[int, Meta(ge=1024)] = 64 * 1024 * 1024
    """``memory``: bytes held at most (answers, vectors and a fixed overhead per entry); the least recently
    used entries go first. Default 64 MiB."""
    url: str | None = None
    """``redis``: the server (``redis://[:password@]host:port/db``; ``${REDIS_URL}`` reads the environment).
    While it cannot be reached, requests are answered without the cache (``x-stellwerk-cache: bypass``).
    Default ``server.redis``, else ``redis://127.0.0.1:6379/0``."""
    prefix: Annotated[str, Meta(min_length=1, max_length=64)] = "stellwerk:cache:"
    """``redis``: the prefix of every key (several gateways may share one Redis). Default ``stellwerk:cache:``."""
    retry_after: Seconds = 1.0
    """``redis``: seconds the cache is bypassed after Redis failed to answer, before it is tried again. Default 1."""
    timeout: Seconds = 0.25
    """``redis``: seconds a connection or command may take before the cache is bypassed. Default 0.25."""


class OtelOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """OpenTelemetry tracing (needs ``pip install 'stellwerk[otel]'``): a span per request, one per attempt."""

    endpoint: str | None = None
    """OTLP over HTTP traces endpoint, e.g. ``http://127.0.0.1:4318/v1/traces``. Default: the SDK's
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``http://localhost:4318/v1/traces``)."""
    service_name: Annotated[str, Meta(min_length=1, max_length=256)] = "stellwerk"
    """The ``service.name`` resource attribute. Default ``stellwerk``."""
    sample_ratio: Annotated[float, Meta(ge=0, le=1)] = 1.0
    """Share of new traces recorded (parent-based: an incoming ``traceparent`` keeps its sampled flag). Default 1."""


class ServerConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The gateway server. Command-line flags override ``host`` and ``port``."""

    host: str = "127.0.0.1"
    """Address to listen on. Default 127.0.0.1."""
    port: Annotated[int, Meta(ge=0, le=65535)] = 4000
    """Port to listen on. Default 4000."""
    max_body_size: Annotated[int, Meta(ge=1024)] = 32 * 1024 * 1024
    """Largest request body accepted, in bytes; larger ones get 413 before being read. Default 32 MiB."""
    keepalive_timeout: Seconds = 75.0
    """Seconds an idle client connection is kept open. Default 75."""
    max_response_size: Annotated[int, Meta(ge=1024)] = 64 * 1024 * 1024
    """Largest non-streamed upstream answer read, in bytes; a larger one fails at once with a 502 naming
    this limit (streams are not limited in total, only in what is buffered). Default 64 MiB."""
    header_timeout: Seconds = 10.0
    """Seconds a client has to send a request's line and headers, from its first byte; then 408 and
    the connection is closed (against slowloris). Default 10."""
    body_timeout: Seconds = 30.0
    """Seconds a client has to send a request body, from the end of its headers; a slower body is still
    accepted while it arrives at ``body_min_rate`` on average. Then 408 and close. Default 30."""
    body_min_rate: Annotated[int, Meta(ge=0)] = 16 * 1024
    """Bytes per second: a body taking longer than ``body_timeout`` must have arrived at least this fast
    on average (0: ``body_timeout`` is a hard limit). Default 16384."""
    max_connections: Annotated[int, Meta(ge=1)] = 4096
    """Client connections held at most; past it, new connections get a 503 and are closed at once, and
    the ones held are served on. Default 4096."""
    shutdown_grace: Annotated[float, Meta(ge=0, le=3600)] = 30.0
    """Seconds in-flight requests and streams get to finish after SIGTERM/SIGINT (the listener closes at
    once); streams still running then end with a ``stream_interrupted`` error event. Default 30."""
    allowed_hosts: list[str] = []
    """``Host`` names accepted besides IP addresses and ``localhost`` (against DNS rebinding): exact names,
    ``*.example.com`` for subdomains, or ``*`` for any. Default none."""
    cors_origins: list[str] = []
    """Web origins (``https://app.example.com``, or ``*``) allowed to call the gateway from a browser:
    they get CORS headers and preflight answers; requests from other origins that could change state
    are refused. Default none."""
    metrics_public: bool = False
    """Serve ``GET /metrics`` to any scraper: no admin auth and no ``Host`` check for that one path. Default
    false: ``/metrics`` follows the rules of the other admin routes."""
    metrics_per_key: bool = False
    """Also export requests, tokens and dollars by gateway key id (``stellwerk_key_*``). Off by default: a
    label per key makes a series per key, which a gateway with many keys should not send to Prometheus."""
    access_log: Annotated[str, Meta(min_length=1)] = "off"
    """One JSON line per finished request: ``stdout``, a file path to append to, or ``off``. Default ``off``."""
    log_payloads: bool = False
    """Put prompts and answers into access-log lines (``request`` and ``response``). Default false: never."""
    otel: OtelOptions | None = None
    """OpenTelemetry tracing over OTLP/HTTP. Default off (and then it costs nothing)."""
    master_key: Annotated[str, Meta(min_length=16)] | None = None
    """The admin key (use ``${STELLWERK_MASTER_KEY}``). When set, every ``/v1/*`` request needs a valid
    gateway key and every ``/admin/*`` request the master key or a key with the ``admin`` scope. When
    not set, auth is off and the server refuses non-loopback addresses unless started with
    ``--allow-unauthenticated``. Default none. Never logged or returned."""
    store: str | None = None
    """Where keys, teams and the spend ledger are kept: ``sqlite:///relative/path.db`` (relative to the
    working directory), ``sqlite:////absolute/path.db``, or ``postgresql://user@host:port/database``
    (shared by replicas; ``pip install 'stellwerk[postgres]'``). Default ``sqlite:///stellwerk.db`` when
    ``master_key`` is set; without a master key and without ``store`` nothing is stored."""
    spend_journal: Annotated[str, Meta(min_length=1)] | None = None
    """The spend journal's path: spend records wait there until stored (and while the store is
    unreachable). Each process writes ``<path>.<n>`` of its own, so workers and replicas may share it.
    Default: next to an SQLite store (``<path>.journal``); ``stellwerk-spend.journal`` in the working
    directory with PostgreSQL."""
    reserve_output_tokens: Annotated[int, Meta(ge=1, le=10_000_000)] = 1024
    """Output tokens reserved against a key's tpm and budget when a request names no ``max_tokens``
    (reconciled with the real usage when the answer completes). Default 1024."""
    spend_flush_interval: Annotated[float, Meta(gt=0, le=60)] = 0.5
    """Seconds between batches of spend records moved from the journal into the store. Default 0.5."""

    cache: ServerCacheConfig = ServerCacheConfig()
    """Where cached responses live (models turn caching on in their own ``cache``)."""
    redis: str | None = None
    """Redis shared by every replica (``redis://[:password@]host:port/db`` or ``unix:///path?db=N``): global
    rpm and tpm of deployments, keys and teams, breakers, key changes, the replica list (``GET
    /admin/cluster``) and, unless ``server.cache`` names its own, the response cache. While it is down each
    replica falls back to local state. Default none: this process alone."""
    redis_prefix: Annotated[str, Meta(min_length=1, max_length=64)] = "stellwerk:"
    """The prefix of every key the replicas share (several gateways may share one Redis). Default ``stellwerk:``."""
    redis_timeout: Seconds = 0.25
    """Seconds a connection to ``server.redis`` or a command on it may take; past it the replica takes Redis for
    down and falls back to local state until a heartbeat reconnects. Default 0.25."""


class KeyConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A gateway key declared in the config file (GitOps); the same fields as ``POST /admin/keys``.

    Declared keys are loaded at start and changed here, not through the admin API.
    """

    name: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$")]
    """Unique among declared keys; the key's id is ``cfg_<name>``. Required."""
    key: Annotated[str, Meta(min_length=16, max_length=512)]
    """The secret clients send (use ``${ENV_VAR}``). Required. Only its hash is kept in memory."""
    team: str | None = None
    """A team created with ``POST /admin/teams``; its limits apply too. Default none."""
    models: list[str] = []
    """Model names or globs (``gpt-*``) the key may use. Default: every model."""
    rpm: Annotated[int, Meta(ge=1)] | None = None
    """Requests per minute. Default unlimited."""
    tpm: Annotated[int, Meta(ge=1)] | None = None
    """Tokens per minute (reserved at admission, reconciled on completion). Default unlimited."""
    max_parallel: Annotated[int, Meta(ge=1)] | None = None
    """Requests in flight at once. Default unlimited."""
    budget: Budget | None = None
    """``{usd, period: 1h|1d|7d|30d|total}``. Default none."""
    expires_at: str | None = None
    """RFC 3339 time after which the key is refused. Default never."""
    scopes: tuple[str, ...] = ("inference",)
    """``inference`` and/or ``admin``. Default ``[inference]``."""
    tags: list[str] = []
    """Free labels. Default none."""
    metadata: dict[str, Any] = {}
    """Free JSON. Default none."""


class Config(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole file."""

    models: Annotated[list[ModelConfig], Meta(min_length=1)]
    """The model names the gateway serves. At least one. Required."""
    server: ServerConfig = ServerConfig()
    """Server settings. Optional."""
    keys: list[KeyConfig] = []
    """Gateway keys declared in the file (used when ``server.master_key`` is set). Optional."""

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = msgspec.to_builtins(self)
        return result
