"""Stellwerk: a resilient multi-model LLM router, as a library and as a gateway server."""

from stellwerk.config import Config, load_dict, load_file
from stellwerk.errors import (
    AllAttemptsFailedError,
    ConfigError,
    InvalidRequestError,
    ModelNotFoundError,
    Outcome,
    StellwerkError,
    UpstreamError,
)
from stellwerk.events import RequestRecord, StatsCollector
from stellwerk.routing import ChatResult, ChatStream, EmbeddingsResult, Router
from stellwerk.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "AllAttemptsFailedError",
    "ChatResult",
    "ChatStream",
    "Config",
    "ConfigError",
    "EmbeddingsResult",
    "InvalidRequestError",
    "ModelNotFoundError",
    "Outcome",
    "RequestRecord",
    "Router",
    "StatsCollector",
    "StellwerkError",
    "UpstreamError",
    "Usage",
    "load_dict",
    "load_file",
]
