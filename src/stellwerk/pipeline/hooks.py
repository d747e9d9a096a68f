"""Completion hooks: each runs once with the request's record; one that fails is logged, and the answer and
the other hooks go on. Compiled (native/modules.txt): a stream's hooks run on its last chunk."""

from __future__ import annotations

import logging
from collections.abc import Callable

from stellwerk.telemetry.events import RequestFinished

__all__ = ["Hook", "run_hook"]

log = logging.getLogger("stellwerk.pipeline")

Hook = Callable[[RequestFinished], None]


def run_hook(hook: Hook, record: RequestFinished) -> None:
    try:
        hook(record)
    except Exception:
        log.exception("completion hook %r failed", hook)
