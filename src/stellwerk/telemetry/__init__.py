"""Telemetry as typed events: the request path emits them, listeners observe (stats, logs, experiments, demo)."""

from .events import (
    AttemptFinished,
    AttemptStarted,
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
    "AttemptFinished",
    "AttemptStarted",
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
