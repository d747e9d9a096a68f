"""Telemetry as typed events: the request path emits them, listeners observe (stats, logs, experiments, demo)."""

from .events import (
    MAX_BATCH,
    AttemptFinished,
    AttemptStarted,
    BatchListener,
    BreakerChanged,
    Event,
    Events,
    HedgeSent,
    Listener,
    RequestFinished,
    RequestStarted,
    RetryBudgetRefused,
    RouteDecided,
    StreamResumed,
)
from .stats import DeploymentStats, StatsCollector

__all__ = [
    "MAX_BATCH",
    "AttemptFinished",
    "AttemptStarted",
    "BatchListener",
    "BreakerChanged",
    "DeploymentStats",
    "Event",
    "Events",
    "HedgeSent",
    "Listener",
    "RequestFinished",
    "RequestStarted",
    "RetryBudgetRefused",
    "RouteDecided",
    "StatsCollector",
    "StreamResumed",
]
