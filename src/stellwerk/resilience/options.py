"""The options of the backoff, the circuit breaker and the retry budget (re-exported by their modules).

They live in this module of their own because ``backoff``, ``breaker`` and ``budget`` are compiled with mypyc,
which drops the keyword arguments of a class statement (``frozen=True, forbid_unknown_fields=True,
kw_only=True``); this module is not compiled.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["BackoffOptions", "BreakerOptions", "RetryBudgetOptions"]


class BackoffOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    base: Annotated[float, Meta(ge=0, le=60)] = 0.1
    """Seconds; the first retry waits up to this long. Default 0.1."""
    cap: Annotated[float, Meta(ge=0, le=300)] = 5.0
    """Seconds; no single wait is longer (except a honoured Retry-After). Default 5."""
    max_retry_after: Annotated[float, Meta(ge=0, le=10)] = 10.0
    """Longest Retry-After honoured by waiting, in seconds (at most 10: a longer wait is classified as
    "move on" by the providers' adapters). Default 10."""


class BreakerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    consecutive_failures: Annotated[int, Meta(ge=1, le=1000)] = 5
    """Trip after this many failures in a row. Default 5."""
    failure_rate: Annotated[float, Meta(gt=0, le=1)] = 0.5
    """Trip when at least this share of recent answers failed... Default 0.5."""
    min_requests: Annotated[int, Meta(ge=1)] = 20
    """...and the window holds at least this many answers. Default 20."""
    window: Annotated[int, Meta(ge=1, le=3600)] = 30
    """Seconds of history for the failure rate. Default 30."""
    open_time: Annotated[float, Meta(gt=0, le=3600)] = 5.0
    """Seconds a tripped breaker stays open the first time. Default 5."""
    max_open_time: Annotated[float, Meta(gt=0, le=86400)] = 120.0
    """Cap on the open time as it grows with repeated ejections. Default 120."""
    jitter: Annotated[float, Meta(ge=0, lt=1)] = 0.2
    """Relative jitter on the open time. Default 0.2 (±20%)."""


class RetryBudgetOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ratio: Annotated[float, Meta(ge=0, le=10)] = 0.2
    """Retries allowed per original request, on average over the window. Default 0.2 (20% extra load)."""
    min_per_second: Annotated[float, Meta(ge=0, le=1000)] = 1.0
    """Retries per second always allowed (the reserve). Default 1."""
    window: Annotated[int, Meta(ge=1, le=600)] = 10
    """Seconds over which requests and retries are counted. Default 10."""
