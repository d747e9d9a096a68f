"""Stellwerk: a resilient multi-model LLM router, as a library and as a gateway server."""

import stellwerk.native  # noqa: F401  (first: decides whether the compiled request path may load, see native/build.py)
from stellwerk.compose import Registries, default_registries, load_dict, load_file, load_text
from stellwerk.config import Config
from stellwerk.errors import (
    AllAttemptsFailedError,
    ConfigError,
    InvalidRequestError,
    ModelNotFoundError,
    Outcome,
    StellwerkError,
    UpstreamError,
)
from stellwerk.pipeline import Call, ChatResult, EmbeddingsResult, Operation, Reply, Stream
from stellwerk.routing import ChatStream, Router
from stellwerk.telemetry import Event, Events, RequestFinished, StatsCollector
from stellwerk.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "AllAttemptsFailedError",
    "Call",
    "ChatResult",
    "ChatStream",
    "Config",
    "ConfigError",
    "EmbeddingsResult",
    "Event",
    "Events",
    "InvalidRequestError",
    "ModelNotFoundError",
    "Operation",
    "Outcome",
    "Registries",
    "Reply",
    "RequestFinished",
    "Router",
    "StatsCollector",
    "StellwerkError",
    "Stream",
    "UpstreamError",
    "Usage",
    "default_registries",
    "load_dict",
    "load_file",
    "load_text",
]
