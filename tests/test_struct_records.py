"""The msgspec records keep their class options (frozen, keyword-only, no unknown fields), however they are built.

They live in modules that are never compiled with mypyc (it drops the keyword arguments of a class statement);
this checks the options where they show, so that a record moved back into a compiled module fails here when the
suite runs against a compiled build.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from stellwerk.pipeline.call import Call, Principal
from stellwerk.providers.base import Endpoint, UpstreamRequest
from stellwerk.resilience.backoff import BackoffOptions
from stellwerk.resilience.breaker import BreakerOptions
from stellwerk.resilience.budget import RetryBudgetOptions
from stellwerk.routing.planner import Decision
from stellwerk.telemetry.access_log import Line
from stellwerk.telemetry.events import (
    AttemptFinished,
    AttemptStarted,
    BreakerChanged,
    Event,
    HedgeSent,
    RequestFinished,
    RequestStarted,
    RetryBudgetRefused,
    RouteDecided,
    StreamResumed,
)
from stellwerk.usage import Usage

EVENTS = [Event, RequestStarted, RequestFinished, RouteDecided, AttemptStarted, AttemptFinished, BreakerChanged,
          RetryBudgetRefused, HedgeSent, StreamResumed]
OPTIONS = [BackoffOptions, BreakerOptions, RetryBudgetOptions]

FROZEN = [*EVENTS, *OPTIONS, Call, Usage, UpstreamRequest, Endpoint]
KEYWORD_ONLY = [*EVENTS, *OPTIONS, Call, Decision, Line]


@pytest.mark.parametrize("kind", FROZEN, ids=lambda k: k.__name__)
def test_frozen_records_are_frozen(kind: type[msgspec.Struct]) -> None:
    assert kind.__struct_config__.frozen


@pytest.mark.parametrize("kind", [Decision, Line], ids=lambda k: k.__name__)
def test_mutable_records_are_not_frozen(kind: type[msgspec.Struct]) -> None:
    assert not kind.__struct_config__.frozen


@pytest.mark.parametrize("kind", KEYWORD_ONLY, ids=lambda k: k.__name__)
def test_keyword_only_records_take_no_positional_arguments(kind: type[msgspec.Struct]) -> None:
    assert kind.__match_args__ == ()
    with pytest.raises(TypeError, match="positional"):
        kind(*[None] * max(1, len(kind.__struct_fields__)))


def test_positional_records_take_positional_arguments() -> None:
    assert Usage(1, 2) == Usage(prompt_tokens=1, completion_tokens=2)
    assert UpstreamRequest("POST", "http://u", b"", b"{}").url == "http://u"


def test_a_record_cannot_be_changed() -> None:
    usage = Usage(1, 2)
    with pytest.raises(AttributeError):
        usage.prompt_tokens = 3  # type: ignore[misc]
    assert hash(usage) == hash(Usage(1, 2))


@pytest.mark.parametrize(("kind", "data", "error"), [
    (BackoffOptions, {"base": -1}, r"Expected `float` >= 0(\.0)? - at `\$.base`"),
    (BackoffOptions, {"bogus": 1}, "Object contains unknown field `bogus`"),
    (BreakerOptions, {"failure_rate": 0}, r"Expected `float` > 0(\.0)? - at `\$.failure_rate`"),
    (BreakerOptions, {"bogus": 1}, "Object contains unknown field `bogus`"),
    (RetryBudgetOptions, {"window": 0}, r"Expected `int` >= 1 - at `\$.window`"),
    (RetryBudgetOptions, {"bogus": 1}, "Object contains unknown field `bogus`"),
])
def test_options_refuse_invalid_values_and_unknown_fields(kind: type[msgspec.Struct], data: dict[str, Any],
                                                            error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        msgspec.convert(data, kind)


def test_a_principal_is_keyword_only_equal_by_value_and_hashable() -> None:
    """:class:`Principal` is a compiled class, not a record (its fields are read on every governed request)."""
    one = Principal(key_id="k1", team="t", scopes=frozenset({"inference"}))
    assert one == Principal(key_id="k1", team="t", scopes=frozenset({"inference"}))
    assert one != Principal(key_id="k1", team=None, scopes=frozenset({"inference"}))
    assert one != "k1"
    assert len({one, Principal(key_id="k1", team="t", scopes=frozenset({"inference"}))}) == 1
    assert repr(Principal(key_id="k2")) == "Principal(key_id='k2', team=None, scopes=frozenset())"
    with pytest.raises(TypeError):
        Principal("k1")  # type: ignore[misc]
