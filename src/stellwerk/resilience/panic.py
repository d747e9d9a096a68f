"""Panic mode (Envoy): when too few deployments are healthy, ignore health rather than fail everything.

With fewer than ``threshold`` of a model's planned deployments healthy, the
attempt loop keeps the healthy ones first and tries the unhealthy ones as last
resorts, instead of sending the whole load to the few left (or to none).
``threshold`` 0 never panics; 1 panics as soon as one deployment is unhealthy.
"""

from __future__ import annotations

__all__ = ["in_panic"]


def in_panic(healthy: int, total: int, threshold: float) -> bool:
    """Whether ``healthy`` of ``total`` deployments is below the panic ``threshold`` (a share, 0-1)."""
    return total > 0 and healthy < threshold * total
