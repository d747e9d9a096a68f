"""Fixtures for the routing-strategy tests: everything in virtual time with a seeded RNG."""

from __future__ import annotations

import random

import pytest

from stellwerk.routing.strategies.base import RequestFacts


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240611)


@pytest.fixture
def request_facts() -> RequestFacts:
    return RequestFacts(model="chat", prompt_tokens=1000, expected_output_tokens=200)
