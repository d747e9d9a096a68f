"""Blocking one-off HTTP requests: readiness probes and answer checks (never on the measured path)."""

from __future__ import annotations

import http.client
import json

import orjson


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on a fresh connection to 127.0.0.1; (0, reason) if it failed at the transport level."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, repr(exc).encode()
    finally:
        conn.close()


def is_ok(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bool:
    return request(port, method, path, body, headers, timeout=2.0)[0] == 200


def check_answer(status: int, body: bytes, stream: bool) -> str:
    """Describe a chat-completions answer ("20 SSE chunks, usage ok"); raise ValueError if it is wrong."""
    if status != 200:
        raise ValueError(f"HTTP {status}: {body[:300].decode(errors='replace')}")
    if not stream:
        doc = orjson.loads(body)
        content = doc["choices"][0]["message"]["content"]
        return f"{len(content)} chars, usage={doc.get('usage', {}).get('completion_tokens')}"
    events = [line[5:].strip() for line in body.split(b"\n") if line.startswith(b"data:")]
    if not events or events[-1] != b"[DONE]":
        raise ValueError(f"stream does not end with [DONE]: {body[-200:]!r}")
    chunks = [json.loads(e) for e in events[:-1]]
    with_content = sum(1 for c in chunks for ch in c.get("choices") or [] if (ch.get("delta") or {}).get("content"))
    usage = next((c["usage"] for c in chunks if c.get("usage")), None)
    return f"{len(chunks)} SSE chunks ({with_content} with content), usage={'yes' if usage else 'no'}"
