"""A lease: the only way to use a deployment. The attempt loop, the stream and the prober all take one.

    lease = Lease(deployment, ...)      in flight +1; requests and reserved tokens counted
        ├─ first_token()                a stream's first chunk (its time to first token)
        └─ exactly one of
           ├─ ok(usage)                 an answer: breaker success, health, routing statistics
           ├─ failed(error)             a classified failure: breaker failure unless the request was at
           │                            fault (client error, content policy, context too long); health
           ├─ release()                 nothing learned (cancelled, lost hedge, client gone): breaker slot freed
           └─ probed(error, reopen)     an active health check's verdict
                                        in flight -1, AttemptFinished

Everything a deployment learns from one use of it is written here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from stellwerk.errors import Attempt, Outcome, UpstreamError
from stellwerk.redact import redact, scrub
from stellwerk.telemetry import AttemptFinished, AttemptStarted, Events
from stellwerk.usage import Usage

from .deployment import Deployment

__all__ = ["Lease"]

log = logging.getLogger("stellwerk.health")

_REQUEST_AT_FAULT: Final = frozenset({Outcome.CLIENT_ERROR, Outcome.CONTENT_POLICY, Outcome.CONTEXT_TOO_LONG})


class Lease:
    __slots__ = ("_clock", "_events", "closed", "deployment", "request_id", "reserved", "started", "ttft")

    def __init__(self, deployment: Deployment, *, clock: Callable[[], float], events: Events, request_id: str,
                 number: int = 0, reserve_tokens: int = 0) -> None:
        """Acquire: ``number`` is the attempt's position in its request; ``reserve_tokens`` are counted against
        the deployment's per-minute window now and corrected to the real usage by :meth:`ok`."""
        self.deployment = deployment
        self.request_id = request_id
        self._clock = clock
        self._events = events
        self.closed = False
        self.ttft: float | None = None
        self.started = clock()
        deployment.state.in_flight += 1
        routing = deployment.routing
        self.reserved = reserve_tokens if routing.count_usage else 0
        if routing.count_usage:
            routing.requests.add()
            routing.tokens.add(reserve_tokens)
        if AttemptStarted in events.heard:
            events.emit(AttemptStarted(request_id=request_id, model=deployment.model, deployment=deployment.id,
                                       number=number))

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def first_token(self) -> float:
        """A stream's first chunk arrived: its time to first token, recorded (success comes with :meth:`ok`)."""
        self.ttft = ttft = self._clock() - self.started
        self.deployment.health.first_token(ttft)
        return ttft

    def ok(self, usage: Usage | None) -> None:
        """The deployment answered (a stream: completely)."""
        if self._close("ok", None):
            return
        dep, now = self.deployment, self._clock()
        latency = now - self.started
        dep.breaker.record(True)
        dep.health.success(now, latency, None)
        if usage is not None:
            dep.observe(latency, self.ttft, usage.completion_tokens, usage.total_tokens - self.reserved)
            if dep.state.shared is not None:
                dep.state.shared.settle(dep, usage.total_tokens - self.reserved)

    def failed(self, err: UpstreamError) -> Attempt:
        """The attempt failed; returns it as reported to clients (its message redacted)."""
        dep = self.deployment
        scrub(err, dep.endpoint.secrets)
        attempt = Attempt(dep.id, err.outcome, err.message, err.upstream_status, err.reason, err.retry_after, err.param)
        if self._close(err.outcome.value, err.upstream_status):
            return attempt
        if err.outcome in _REQUEST_AT_FAULT:
            dep.breaker.release()  # the request was at fault, not the deployment
        else:
            dep.breaker.record(False)
            dep.health.failure(err.message)
        return attempt

    def release(self) -> None:
        """Nothing was learned about the deployment (cancelled, a lost hedge, the client went away)."""
        if not self._close("cancelled", None):
            self.deployment.breaker.release()

    def probed(self, error: str | None, reopen_for: float) -> None:
        """An active health check's verdict: a success closes the breaker, a failure opens it for ``reopen_for``."""
        if self._close("ok" if error is None else "probe_failed", None):
            return
        dep = self.deployment
        health = dep.health
        health.probe_at = self._clock()
        health.probe_ok = error is None
        health.probe_error = None if error is None else redact(error, dep.endpoint.secrets)
        if error is None:
            if dep.breaker.state.value != "closed":
                log.info("health check: %s answers again; closing its breaker", dep.id)
            dep.breaker.recover()
        else:
            log.warning("health check: %s failed: %s", dep.id, health.probe_error)
            dep.breaker.force_open(reopen_for)

    def _close(self, outcome: str, status: int | None) -> bool:
        """Ends the lease; True if it had ended already (nothing more to record)."""
        if self.closed:
            return True
        self.closed = True
        dep = self.deployment
        dep.state.in_flight -= 1
        if AttemptFinished in self._events.heard:
            self._events.emit(AttemptFinished(request_id=self.request_id, model=dep.model, deployment=dep.id,
                                              outcome=outcome, elapsed=self._clock() - self.started, status=status))
        return False
