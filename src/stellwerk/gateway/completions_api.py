"""The legacy Completions front door: ``POST /v1/completions``, native or translated to chat.

LlamaIndex ``OpenAILike(is_chat_model=False)``, ``litellm.text_completion``, ``llm``'s completion models
and the SDKs' ``completions.create`` still call it. A request becomes a chat request with one user
message (the prompt), is routed like any chat, and the answer comes back as a ``text_completion``
(streamed as ``text_completion`` chunks, then ``[DONE]``), so every provider can serve it. Deployments
that declare ``supports_completions`` get the request as the client sent it instead
(:mod:`stellwerk.providers.openai.completions`).

=====================  =================================================================
completions            chat
=====================  =================================================================
``prompt``             one user message: a string, or token ids (decoded with cl100k)
``max_tokens``         ``max_tokens``, default 16 (the Completions API's own default)
``echo``               the prompt is put before each answer text
``n``, ``stop``, ``temperature``, ``top_p``, ``seed``, ``user``, penalties, ``logit_bias``,
``stream``, ``stream_options``: the same
=====================  =================================================================

What chat cannot express is refused with a 400 naming it, never dropped: ``suffix``, ``logprobs``,
``best_of`` above 1, and several prompts in one request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import orjson

from stellwerk.errors import InvalidRequestError, StellwerkError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Stream, interrupted_event, is_result
from stellwerk.tokens import embedding_texts

from .door import FrontDoor
from .errors import answer_headers

__all__ = ["CompletionsAPI", "to_chat_request", "to_text_completion"]

_DEFAULT_MAX_TOKENS: Final = 16
_REFUSED: Final = {"suffix": "a suffix (insertion) cannot be expressed as chat",
            "logprobs": "log probabilities are not returned by every provider behind this gateway"}


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    texts = embedding_texts(prompt) if isinstance(prompt, list) else None  # a string list, ids or id lists
    if texts is None:
        raise InvalidRequestError("prompt: expected a string, a list of strings or token ids", param="prompt")
    if len(texts) != 1:
        raise InvalidRequestError(f"prompt: {len(texts)} prompts in one request; send one prompt per request",
                                  param="prompt")
    return texts[0]


def to_chat_request(body: Any) -> tuple[dict[str, Any], str]:
    """Validate a completions request; return ``(chat request, prompt)``."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    for field, why in _REFUSED.items():
        if body.get(field) not in (None, "", 0, False):
            raise InvalidRequestError(f"{field}: not supported: {why}", param=field)
    best_of = body.get("best_of")
    if best_of not in (None, 1):
        raise InvalidRequestError("best_of: only 1 is supported (answers are not ranked)", param="best_of")
    echo = body.get("echo", False)
    if not isinstance(echo, bool):
        raise InvalidRequestError("echo: expected a boolean", param="echo")
    prompt = _prompt(body)
    chat = {k: v for k, v in body.items() if k not in ("prompt", "echo", "best_of", "suffix", "logprobs")}
    chat["messages"] = [{"role": "user", "content": prompt}]
    chat.setdefault("max_tokens", _DEFAULT_MAX_TOKENS)
    return chat, prompt if echo else ""


def _native_body(body: dict[str, Any]) -> dict[str, Any]:
    """What deployments serving completions natively get: the request as the client sent it (``echo`` is
    applied by the gateway either way, so that every deployment answers alike)."""
    return {k: v for k, v in body.items() if k != "echo"} | {"max_tokens": body.get("max_tokens", 16)}


def _finish(reason: Any) -> Any:
    return "stop" if reason == "tool_calls" else reason


def to_text_completion(data: dict[str, Any], completion_id: str, echo: str) -> dict[str, Any]:
    """A ``chat.completion`` → a ``text_completion``."""
    choices = []
    for i, choice in enumerate(data.get("choices") or ()):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        choices.append({"text": echo + (content if isinstance(content, str) else ""),
                        "index": choice.get("index", i) if isinstance(choice, dict) else i, "logprobs": None,
                        "finish_reason": _finish(choice.get("finish_reason")) if isinstance(choice, dict) else None})
    answer = {"id": completion_id, "object": "text_completion", "created": data.get("created"),
              "model": data.get("model"), "choices": choices}
    if data.get("usage") is not None:
        answer["usage"] = data["usage"]
    return answer


def _chunk(chunk: dict[str, Any], completion_id: str, echo: str, started: set[int]) -> dict[str, Any] | None:
    """A ``chat.completion.chunk`` → a ``text_completion`` chunk (None when it carries nothing)."""
    choices = []
    for choice in chunk.get("choices") or ():
        index = choice.get("index", 0)
        delta = choice.get("delta") or {}
        content = delta.get("content")
        text = content if isinstance(content, str) else ""
        if index not in started:
            started.add(index)
            text = echo + text
        if text or choice.get("finish_reason"):
            choices.append({"text": text, "index": index, "logprobs": None,
                            "finish_reason": _finish(choice.get("finish_reason"))})
    if not choices and chunk.get("usage") is None:
        return None
    out = {"id": completion_id, "object": "text_completion", "created": chunk.get("created"),
           "model": chunk.get("model"), "choices": choices}
    if chunk.get("usage") is not None:
        out["usage"] = chunk["usage"]
    return out


class CompletionsAPI(FrontDoor):
    """``POST /v1/completions``, reading requests with the gateway's readers (:class:`~.door.FrontDoor`)."""

    async def completions(self, request: Request, rid: str) -> Response | StreamingResponse:
        principal = self._caller(request)  # 401 before the body is read
        body = self._parse_json(request)
        chat, echo = to_chat_request(body)
        call = self.chat_call(request, rid, chat, principal).evolve(completions=_native_body(body))
        reply = await self.router.handle(call)
        completion_id = f"cmpl-{rid}"
        headers = answer_headers(reply, call)
        if is_result(reply):
            return Response(200, orjson.dumps(to_text_completion(reply.data, completion_id, echo)), headers,
                            head=reply.head)
        return StreamingResponse(_SSE(reply, completion_id, echo), headers=headers, head=reply.head)


class _SSE:
    """The chat stream as ``text_completion`` server-sent events, ending in ``[DONE]`` or an error event; the chat
    stream is closed when they end. An async iterator class rather than an async generator (mypyc compiles
    classes, not async generators), ending like the generator it replaces: ``[DONE]`` comes after the stream was
    closed, an error event before (it is closed at the next step or ``aclose``), and an error or ``aclose``
    after the first step closes it."""

    def __init__(self, stream: Stream, completion_id: str, echo: str) -> None:
        self._stream = stream
        self._completion_id = completion_id
        self._echo = echo
        self._choices: set[int] = set()
        """The indexes of the choices that have begun."""
        self._chunks: AsyncIterator[dict[str, Any]] | None = None
        self._interrupted = False
        self._over = False

    def __aiter__(self) -> _SSE:
        return self

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        stream = self._stream
        if self._interrupted:
            self._over = True
            await stream.aclose()
            raise StopAsyncIteration
        if self._chunks is None:
            self._chunks = stream.__aiter__()
        error: BaseException | None = None
        try:
            while True:
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    break
                out = _chunk(chunk, self._completion_id, self._echo, self._choices)
                if out is not None:
                    return b"data: %s\n\n" % orjson.dumps(out)
        except StellwerkError as err:
            self._interrupted = True
            return interrupted_event(stream.deployment, err.message)
        except BaseException as other:  # not `err`: compiled, a name has one type per function
            error = other
        self._over = True
        await stream.aclose()  # outside the except block (see ChatStream._next_kept)
        if error is not None:
            raise error
        return b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        if not self._over:
            self._over = True
            if self._chunks is not None:
                await self._stream.aclose()
