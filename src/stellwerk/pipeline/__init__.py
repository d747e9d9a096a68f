"""One request pipeline: a frozen :class:`Call` in, a :class:`Reply` out, middlewares in a fixed order."""

from .call import Call, Facts, Operation, Principal
from .chain import STAGES, Handler, Middleware, compose
from .reply import (
    ChatResult,
    Completion,
    EmbeddingsResult,
    Headers,
    Hook,
    ReplayStream,
    Reply,
    Result,
    Stream,
    Tap,
    broke_off,
    interrupted_event,
    is_result,
    merge_headers,
)

__all__ = [
    "STAGES",
    "Call",
    "ChatResult",
    "Completion",
    "EmbeddingsResult",
    "Facts",
    "Handler",
    "Headers",
    "Hook",
    "Middleware",
    "Operation",
    "Principal",
    "ReplayStream",
    "Reply",
    "Result",
    "Stream",
    "Tap",
    "broke_off",
    "compose",
    "interrupted_event",
    "is_result",
    "merge_headers",
]
