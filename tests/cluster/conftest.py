from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from redis_support import own_prefix


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async for name in own_prefix():
        yield name
