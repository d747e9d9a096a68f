"""Legacy completions sent natively (``POST {api_base}/completions``) to deployments that declare
``supports_completions: true`` (vLLM, llama.cpp, OpenAI's instruct models serving base models).

The router works on chat shapes throughout, so the ``text_completion`` answer (or its chunks) is read
as the equivalent chat answer (a message whose content is the text); the front door turns it back.
"""

from __future__ import annotations

from typing import Any

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk, Endpoint, UpstreamRequest
from stellwerk.providers.shapes import parse_object
from stellwerk.providers.sse import SSEParser

__all__ = ["CompletionsStreamDecoder", "as_chat", "completions_request", "completions_url"]


def completions_url(endpoint: Endpoint) -> str:
    """The completions URL next to the chat one (Azure's deployment path and ``api-version`` included)."""
    return endpoint.chat_url.replace("/chat/completions", "/completions", 1)


def completions_request(deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any],
                        stream: bool) -> UpstreamRequest:
    """The client's completions request, for this deployment's model."""
    wire = {**body, "model": deployment.model}
    if stream:
        wire["stream"] = True
        wire["stream_options"] = {"include_usage": True}  # the gateway accounts tokens; the front door drops it
    else:
        wire.pop("stream", None)
        wire.pop("stream_options", None)
    return UpstreamRequest("POST", completions_url(endpoint), endpoint.sse_headers if stream else endpoint.json_headers,
                           orjson.dumps(wire))


def _choices(data: dict[str, Any], chunk: bool) -> list[dict[str, Any]]:
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream completion has no 'choices'", reason="malformed")
    out = []
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise UpstreamError(Outcome.RETRY_HERE, "upstream completion choice is not an object", reason="malformed")
        text = choice.get("text") if isinstance(choice.get("text"), str) else ""
        body = {"content": text} if chunk else {"role": "assistant", "content": text}
        out.append({"index": choice.get("index", i), "delta" if chunk else "message": body,
                    "logprobs": None, "finish_reason": choice.get("finish_reason")})
    return out


def as_chat(raw: bytes) -> dict[str, Any]:
    """A ``text_completion`` answer read as a ``chat.completion``."""
    data = parse_object(raw)
    answer = {"id": data.get("id"), "object": "chat.completion", "created": data.get("created"),
              "model": data.get("model"), "choices": _choices(data, chunk=False)}
    if isinstance(data.get("usage"), dict):
        answer["usage"] = data["usage"]
    return answer


class CompletionsStreamDecoder:
    """``text_completion`` SSE chunks → ``chat.completion.chunk`` dicts."""

    __slots__ = ("_sse", "done")

    def __init__(self) -> None:
        self._sse = SSEParser()
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for _, event in self._sse.feed(data):
            if self.done:
                break
            if event == b"[DONE]":
                self.done = True
                break
            item = parse_object(event, "stream chunk")
            if isinstance(item.get("error"), dict):
                message = str(item["error"].get("message") or "upstream stream error")
                raise UpstreamError(Outcome.RETRY_HERE, message, reason="http")
            chunk = {"id": item.get("id"), "object": "chat.completion.chunk", "created": item.get("created"),
                     "model": item.get("model"), "choices": _choices(item, chunk=True)}
            if isinstance(item.get("usage"), dict):
                chunk["usage"] = item["usage"]
            chunks.append((chunk, None))
        return chunks
