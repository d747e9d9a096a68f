"""A Lease on a deployment: in flight +1 when taken, -1 exactly once however it ends (a second settle does nothing);
``failed`` redacts the deployment's credentials; a failure the request caused frees the breaker without counting
against the deployment, a transient one counts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from resilience_support import VirtualTime, fake_deployment, fake_model

from stellwerk import Event, Events, Outcome, Router, UpstreamError
from stellwerk.routing.deployment import Deployment
from stellwerk.routing.lease import Lease
from stellwerk.telemetry import AttemptFinished, AttemptStarted
from stellwerk.usage import Usage

SECRET = "hunter2hunter2"  # not key-shaped: only the deployment's own secrets can redact it
HEADER_SECRET = "tok3n-in-a-header"
BREAKER = {"consecutive_failures": 2, "open_time": 5, "jitter": 0}

MakeRouter = Callable[..., Router]


@pytest.fixture
def dep(fake_router: MakeRouter) -> Deployment:
    router = fake_router(fake_model("chat", fake_deployment("a", api_key=SECRET, headers={"x-token": HEADER_SECRET}),
                                    breaker=BREAKER))
    return router.table.deployments["a"]


def lease_on(dep: Deployment, vtime: VirtualTime, events: list[Event]) -> Lease:
    return Lease(dep, clock=vtime, events=Events([events.append]), request_id="r", number=1)


def transient() -> UpstreamError:
    return UpstreamError(Outcome.RETRY_HERE, "upstream trouble", status=503)


SETTLE: dict[str, Callable[[Lease], object]] = {
    "ok": lambda lease: lease.ok(Usage(3, 2)),
    "retry_here": lambda lease: lease.failed(transient()),
    "cancelled": lambda lease: lease.release(),
    "probe_failed": lambda lease: lease.probed("no answer", 30.0),
}


@pytest.mark.parametrize("first", list(SETTLE))
def test_in_flight_changes_exactly_once_however_the_lease_ends(dep: Deployment, vtime: VirtualTime,
                                                              first: str) -> None:
    events: list[Event] = []
    lease = lease_on(dep, vtime, events)
    assert dep.in_flight == 1 and not lease.closed
    vtime.advance(0.5)
    SETTLE[first](lease)
    assert dep.in_flight == 0 and lease.closed
    health = (dep.health.successes, dep.health.failures, dep.breaker.policy.consecutive, dep.breaker.state.value)
    for again in SETTLE.values():
        again(lease)
    assert dep.in_flight == 0
    assert (dep.health.successes, dep.health.failures, dep.breaker.policy.consecutive,
            dep.breaker.state.value) == health  # nothing more was recorded
    started, finished = events
    assert isinstance(started, AttemptStarted) and isinstance(finished, AttemptFinished)
    assert (finished.deployment, finished.outcome, finished.elapsed) == ("a", first, 0.5)


def test_two_leases_count_two_in_flight(dep: Deployment, vtime: VirtualTime) -> None:
    one, two = lease_on(dep, vtime, []), lease_on(dep, vtime, [])
    assert dep.in_flight == 2
    one.release()
    one.release()
    assert dep.in_flight == 1
    two.ok(None)
    assert dep.in_flight == 0


def test_failed_redacts_the_deployments_secrets(dep: Deployment, vtime: VirtualTime) -> None:
    err = UpstreamError(Outcome.MOVE_ON, f"key {SECRET} refused (header {HEADER_SECRET})", status=401)
    attempt = lease_on(dep, vtime, []).failed(err)
    for text in (attempt.message, err.message, dep.health.last_error or ""):
        assert SECRET not in text and HEADER_SECRET not in text and "[redacted]" in text
    assert (attempt.deployment, attempt.outcome, attempt.status) == ("a", Outcome.MOVE_ON, 401)


def test_a_failed_probe_is_redacted_too(dep: Deployment, vtime: VirtualTime) -> None:
    lease_on(dep, vtime, []).probed(f"401 for key {SECRET}", 30.0)
    assert dep.health.probe_ok is False and SECRET not in (dep.health.probe_error or "")
    assert dep.breaker.state.value == "open"
    lease_on(dep, vtime, []).probed(None, 30.0)
    assert dep.health.probe_ok is True and dep.breaker.state.value == "closed"


@pytest.mark.parametrize("outcome", [Outcome.CLIENT_ERROR, Outcome.CONTENT_POLICY, Outcome.CONTEXT_TOO_LONG])
def test_a_failure_the_request_caused_frees_the_breaker_without_counting(dep: Deployment, vtime: VirtualTime,
                                                                       outcome: Outcome) -> None:
    lease_on(dep, vtime, []).failed(UpstreamError(outcome, "bad request", status=400))
    assert (dep.breaker.policy.consecutive, dep.health.failures, dep.breaker.state.value) == (0, 0, "closed")
    # half-open: the probe slot is given back, and the breaker stays as it was
    for _ in range(BREAKER["consecutive_failures"]):
        dep.breaker.record(False)
    vtime.advance(BREAKER["open_time"])
    assert dep.breaker.allow() and dep.breaker.state.value == "half_open" and not dep.breaker.allow()
    lease_on(dep, vtime, []).failed(UpstreamError(outcome, "bad request", status=400))
    assert dep.breaker.state.value == "half_open" and dep.breaker.allow()  # the slot is free again
    assert dep.health.failures == 0


def test_a_transient_failure_counts_against_the_deployment(dep: Deployment, vtime: VirtualTime) -> None:
    lease_on(dep, vtime, []).failed(transient())
    assert (dep.breaker.policy.consecutive, dep.health.failures, dep.breaker.state.value) == (1, 1, "closed")
    lease_on(dep, vtime, []).failed(transient())
    assert (dep.breaker.policy.consecutive, dep.health.failures, dep.breaker.state.value) == (2, 2, "open")
