"""The configuration contract: typed, strict, every field documented with its default.

Unknown keys are errors. Types and ranges are checked by msgspec; cross-field
rules (unique names, known providers and strategies) by :func:`check`, which
lists every problem it finds, each as ``key: what was expected``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

__all__ = ["Config", "DeploymentConfig", "ModelConfig", "Price", "ServerConfig"]

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
    """Wire protocol of the upstream: ``openai`` (any OpenAI-compatible server) or ``azure``. Required."""
    model: Annotated[str, Meta(min_length=1)]
    """The upstream's model name (for ``azure``: the deployment name). Required."""
    api_base: str | None = None
    """Base URL, as the provider's official SDK's ``base_url``. Default: the provider's public endpoint."""
    api_key: str | None = None
    """Credential sent upstream. Use ``${ENV_VAR}``; never logged or returned."""
    api_version: str | None = None
    """``azure`` only: the ``api-version`` query parameter. Default ``2024-10-21``."""
    headers: dict[str, str] = {}
    """Extra headers sent upstream with every request (e.g. ``OpenAI-Organization``)."""
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


class ModelConfig(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A model name clients ask for, and the deployments that can answer it."""

    name: Name
    """What clients put in ``model``. Unique. Required."""
    deployments: Annotated[list[DeploymentConfig], Meta(min_length=1)]
    """At least one. Required."""
    strategy: str = "failover"
    """How deployments are ordered: ``failover`` = in listed order. Default ``failover``."""
    timeout: Seconds = 30.0
    """Seconds per upstream attempt (to the complete answer, or to the first byte of a stream). Default 30."""
    retries: Annotated[int, Meta(ge=0, le=10)] = 1
    """Retries on one deployment (after a transient failure) before moving on to the next. Default 1."""


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


class Config(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole file."""

    models: Annotated[list[ModelConfig], Meta(min_length=1)]
    """The model names the gateway serves. At least one. Required."""
    server: ServerConfig = ServerConfig()
    """Server settings. Optional."""

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = msgspec.to_builtins(self)
        return result
