"""Fixtures for the routing tests: everything in virtual time with a seeded RNG."""

from __future__ import annotations

import random

import pytest


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240611)
