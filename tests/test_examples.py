"""The example configurations in examples/ are valid and build a working router (nothing is sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stellwerk import Router, load_file

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_builds_a_router(path: Path) -> None:
    router = Router(load_file(path, env={}))
    try:
        for model in router.models:
            decision = router.dry_run(model)
            assert decision["steps"], decision
    finally:
        await router.aclose()


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3
