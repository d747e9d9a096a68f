"""Classifying Bedrock runtime errors, from HTTP answers and from event-stream exceptions.

The exception name comes from the ``x-amzn-errortype`` header (``Name:namespace``),
the body's ``__type``, or a stream message's ``:exception-type``; the text from
``message`` (or ``Message``).

===============================================  ======  ====================================
exception                                        status  outcome
===============================================  ======  ====================================
ThrottlingException                              429     RETRY_HERE (MOVE_ON: a per-day quota,
                                                         or a retry-after over 10 s)
ServiceQuotaExceededException                    400     MOVE_ON
ValidationException "Input is too long",         400     CONTEXT_TOO_LONG
"too many input tokens", context window…
ValidationException: the model is invalid or     400     MOVE_ON (this deployment cannot)
"doesn't support" what was asked (tools, images)
ValidationException, anything else               400     CLIENT_ERROR
AccessDeniedException, UnrecognizedClient-,      403     MOVE_ON (credentials, model access)
InvalidSignature-, ExpiredTokenException
ResourceNotFoundException                        404     MOVE_ON
ModelNotReadyException                           429     RETRY_HERE
ModelTimeoutException                            408     RETRY_HERE
ModelErrorException, ModelStreamErrorException   424     RETRY_HERE
InternalServerException,                         5xx     RETRY_HERE
ServiceUnavailableException
===============================================  ======  ====================================
"""

from __future__ import annotations

from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.classify import by_status, json_or_none, mentions, rate_limited
from stellwerk.providers.ratelimit import parse_retry_after
from stellwerk.redact import summarize_body

__all__ = ["classify_error", "exception_error"]

_CONTEXT = ("input is too long", "too many input tokens", "context window", "context length", "prompt is too long",
            "exceeds the maximum")
_INCAPABLE = ("model identifier is invalid", "doesn't support", "does not support", "isn't supported",
              "is not supported")
_MOVE_ON = frozenset({"servicequotaexceededexception", "accessdeniedexception", "unrecognizedclientexception",
                      "invalidsignatureexception", "expiredtokenexception", "incompletesignatureexception",
                      "missingauthenticationtokenexception", "resourcenotfoundexception"})
_RETRY = frozenset({"modelnotreadyexception", "modeltimeoutexception", "modelerrorexception",
                    "modelstreamerrorexception", "internalserverexception", "serviceunavailableexception"})
_STREAM_STATUS = {"throttlingexception": 429, "validationexception": 400, "modelstreamerrorexception": 424,
                  "internalserverexception": 500, "serviceunavailableexception": 503,
                  "modeltimeoutexception": 408}


def _error(name: str, message: str, status: int, headers: dict[str, str], raw: bytes) -> UpstreamError:
    key = name.lower()
    retry_after = parse_retry_after(headers)
    if key == "throttlingexception":
        outcome = rate_limited(retry_after, exhausted=mentions(message, ("per day",)))
    elif key in _MOVE_ON or mentions(message, _INCAPABLE):
        outcome = Outcome.MOVE_ON
    elif key in _RETRY:
        outcome = Outcome.RETRY_HERE
    elif (key == "validationexception" or status == 400) and mentions(message, _CONTEXT):
        outcome = Outcome.CONTEXT_TOO_LONG
    else:
        outcome = by_status(status, retry_after)
    return UpstreamError(outcome, message or f"upstream answered HTTP {status}", status=status,
                         retry_after=retry_after, body=raw or None, code=name or None)


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("message", "Message"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return ""


def classify_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
    payload = json_or_none(body)
    kind = headers.get("x-amzn-errortype") or (payload.get("__type") if isinstance(payload, dict) else None) or ""
    name = str(kind).split(":")[0].rsplit("#", 1)[-1]
    message = _message(payload) or (summarize_body(body) if body else "")
    return _error(name, message, status, headers, body)


def exception_error(name: str, payload: bytes) -> UpstreamError:
    """An ``:exception-type`` message in a ConverseStream (after the HTTP answer began with 200)."""
    message = _message(json_or_none(payload)) or summarize_body(payload) or name
    return _error(name, message, _STREAM_STATUS.get(name.lower(), 500), {}, payload)
