"""A client asking for base64 embeddings gets base64, also from providers that only answer floats."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from stellwerk.http.client import HTTPClient
from support import GUARD

KEY = "gemini-sim-key-0123456789"


async def test_gemini_floats_become_base64_when_asked(start_sim: Any, start_gateway: Any) -> None:
    sim = await start_sim(protocol="gemini", api_key=KEY, embedding_dimensions=8)
    gateway = await start_gateway({"models": [{"name": "embed", "deployments": [{
        "id": "g", "provider": "gemini", "model": "text-embedding-004", "api_base": f"{sim.base_url}/v1beta",
        "api_key": KEY}]}]})
    client = HTTPClient()
    try:
        url = f"http://127.0.0.1:{gateway.port}/v1/embeddings"
        floats = await client.request("POST", url, [("content-type", "application/json")],
                                      orjson.dumps({"model": "embed", "input": ["a", "b"]}), timeout=GUARD)
        assert floats.status == 200
        plain = orjson.loads(await floats.read(timeout=GUARD))["data"]
        encoded = await client.request("POST", url, [("content-type", "application/json")],
                                       orjson.dumps({"model": "embed", "input": ["a", "b"],
                                                     "encoding_format": "base64"}), timeout=GUARD)
        assert encoded.status == 200
        data = orjson.loads(await encoded.read(timeout=GUARD))["data"]
    finally:
        await client.close()
    for as_floats, as_base64 in zip(plain, data, strict=True):
        assert isinstance(as_base64["embedding"], str)
        decoded = struct.unpack("<8f", base64.b64decode(as_base64["embedding"]))
        assert decoded == tuple(struct.unpack("<8f", struct.pack("<8f", *as_floats["embedding"])))
