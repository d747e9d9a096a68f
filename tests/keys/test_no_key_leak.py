"""No log line, event, record, stored byte or admin answer contains a key (only its id)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from keys_support import MASTER, admin, create_key

from stellwerk.telemetry import Event
from support import GUARD, USER


async def test_no_key_anywhere(governed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await governed()
    events: list[Event] = []
    gateway.router.events.subscribe(events.append)
    answers: list[bytes] = []
    key = await create_key(gateway, models=["chat"], rpm=3, budget={"usd": 100, "period": "1d"})
    secret = key["key"]
    revoked = await create_key(gateway)
    async with admin(gateway) as client:
        answers.append((await client.delete(f"/admin/keys/{revoked['id']}")).content)
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=secret, max_retries=0, timeout=GUARD) as sdk:
        await sdk.chat.completions.create(model="chat", messages=USER)
        stream = await sdk.chat.completions.create(model="chat", messages=USER, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await sdk.chat.completions.create(model="other", messages=USER)
        answers.append(denied.value.response.content)
        await sdk.chat.completions.create(model="chat", messages=USER)
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.chat.completions.create(model="chat", messages=USER)
        answers.append(limited.value.response.content)
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=revoked["key"], max_retries=0,
                                  timeout=GUARD) as sdk:
        with pytest.raises(openai.AuthenticationError) as refused:
            await sdk.chat.completions.create(model="chat", messages=USER)
        answers.append(refused.value.response.content)
    async with admin(gateway) as client:
        for path in ("/admin/keys", f"/admin/keys/{key['id']}", "/admin/teams", "/admin/spend?group_by=key",
                     "/admin/stats"):
            answers.append((await client.get(path)).content)
        answers.append((await client.patch(f"/admin/keys/{key['id']}", json={"rpm": 5})).content)
    await gateway.close(grace=1.0)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    texts = {
        "log": "\n".join(r.getMessage() for r in caplog.records).encode(),
        "events": b"\n".join(msgspec.json.encode(e) for e in events),
        "answers": b"\n".join(answers),
        "store": stored,
    }
    assert any(key["id"].encode() in text for text in texts.values())
    for where, text in texts.items():
        for secret_value in (secret, revoked["key"], MASTER):
            assert secret_value.encode() not in text, where
            assert secret_value[7:].encode() not in text, where
