"""Stellwerk's exceptions and the one classification of upstream outcomes.

Every failure is classified exactly once, where it happens (the provider
adapter for upstream answers, the attempt loop for transport errors), into an
:class:`Outcome`. Everything after that reads the outcome, never a provider's
exception or status code.

    StellwerkError                      base; carries an HTTP status and an OpenAI error type
    ├── ConfigError                     the configuration is invalid (lists every problem)
    ├── InvalidRequestError             the client's request is malformed            → 400
    │   ├── ContextWindowExceededError  the prompt fits no deployment (nor fallback) → 400
    │   └── ContentPolicyError          every provider asked refused the content     → 400
    ├── ModelNotFoundError              no model of that name is configured         → 404
    ├── AuthenticationError             missing, unknown, revoked or expired key     → 401
    ├── PermissionDeniedError           the key may not use this model or route      → 403
    ├── RateLimitError                  a key's or team's rpm, tpm or max_parallel   → 429
    │   └── QuotaExceededError          a key's or team's budget is spent            → 429
    ├── StoreUnavailableError           server.store cannot be reached (admin writes) → 503
    ├── UpstreamError                   one upstream attempt failed (has an Outcome)
    └── AllAttemptsFailedError          no deployment answered; lists every attempt  → 502/503/4xx

An :class:`UpstreamError` whose outcome is ``CLIENT_ERROR`` is the upstream
telling the client it sent something wrong (400/401/403/404/422): it is passed
back to the client with its status and never failed over.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import msgspec

__all__ = [
    "AllAttemptsFailedError",
    "Attempt",
    "AuthenticationError",
    "ConfigError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "StellwerkError",
    "StoreUnavailableError",
    "UpstreamError",
]


class Outcome(enum.Enum):
    """What an upstream failure means for routing."""

    RETRY_HERE = "retry_here"
    """Transient: connection reset, timeout, 500/502/503/504, overloaded. Retry, maybe elsewhere."""
    MOVE_ON = "move_on"
    """This deployment cannot serve now (rate-limited with a long reset, auth broken): try the next."""
    CLIENT_ERROR = "client_error"
    """The request itself is wrong: return the upstream's answer to the client, never fail over."""
    CONTEXT_TOO_LONG = "context_too_long"
    """The prompt does not fit this deployment's context window."""
    CONTENT_POLICY = "content_policy"
    """The provider refused the content."""


class StellwerkError(Exception):
    """Base class. ``status`` and ``error_type`` give the OpenAI-shaped HTTP answer."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = None
    param: str | None = None
    attempts: Sequence[Attempt] = ()
    """The upstream attempts made before the error (empty when none was made)."""
    headers: Sequence[tuple[str, str]] = ()
    """Extra headers of the error answer (``retry-after``, ``x-ratelimit-*``)."""
    key_id: str | None = None
    team: str | None = None
    """The caller's key and team, set by the auth stage on errors raised behind it (for the request's record)."""
    limited: str = ""
    """Which rate limit refused the request: ``key``, ``team`` or ``deployment`` (every deployment at its
    rpm/tpm); empty for every other error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(StellwerkError):
    """The configuration is invalid. ``problems`` lists each as 'key: what was expected'."""

    def __init__(self, problems: Sequence[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is invalid:\n{lines}")


class InvalidRequestError(StellwerkError):
    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ContextWindowExceededError(InvalidRequestError):
    def __init__(self, message: str, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(message, param="messages", code="context_length_exceeded")
        self.attempts = list(attempts)


class ContentPolicyError(InvalidRequestError):
    def __init__(self, message: str, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(message, param=None, code="content_policy_violation")
        self.attempts = list(attempts)


class ModelNotFoundError(StellwerkError):
    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"
    param = "model"

    def __init__(self, model: str, available: Sequence[str]) -> None:
        names = ", ".join(available) if available else "none"
        super().__init__(f"The model '{model}' does not exist on this gateway. Available models: {names}.")
        self.model = model


class AuthenticationError(StellwerkError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(StellwerkError):
    status = 403
    error_type = "permission_error"

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code


class RateLimitError(StellwerkError):
    """A gateway limit refused the request at admission; ``headers`` carry ``retry-after`` and ``x-ratelimit-*``."""

    status = 429
    error_type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, headers: Sequence[tuple[str, str]] = (), limited: str = "key") -> None:
        super().__init__(message)
        self.headers = headers
        self.limited = limited


class QuotaExceededError(RateLimitError):
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class StoreUnavailableError(StellwerkError):
    """``server.store`` (PostgreSQL) cannot be reached now. Requests go on (keys from memory, spend records
    in the journal); what must be written to the store at once (admin changes) is refused with a 503."""

    status = 503
    error_type = "store_unavailable"
    code = "store_unavailable"

    def __init__(self, what: str) -> None:
        super().__init__(f"The store (server.store) is unreachable: {what}; try again when it is back "
                         "(store_unavailable).")


class UpstreamError(StellwerkError):
    """One failed upstream attempt, already classified.

    ``message`` never contains credentials: adapters build it from the
    provider's error message, and the router redacts the deployment's key.
    """

    def __init__(
        self,
        outcome: Outcome,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
        error_type: str | None = None,
        code: str | None = None,
        reason: str = "http",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.reason = reason
        """``http`` (an error answer), ``malformed``, ``timeout``, ``connect``, ``read``, ``protocol``, or
        ``unsupported`` (the deployment cannot express the request; ``param`` names what)."""
        self.param = param
        self.upstream_status = status
        self.retry_after = retry_after
        self.body = body
        if status is not None and outcome is Outcome.CLIENT_ERROR:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        elif outcome is Outcome.CLIENT_ERROR:
            self.error_type = "invalid_request_error"
        self.code = code


class Attempt(msgspec.Struct, frozen=True):
    """One upstream attempt, as listed in an :class:`AllAttemptsFailedError`."""

    deployment: str
    outcome: Outcome
    message: str
    status: int | None = None
    reason: str = "http"
    retry_after: float | None = None
    """Seconds the upstream asked to wait (rate limits), when it said."""
    param: str | None = None
    """The request's parameter this deployment could not serve (``reason`` ``unsupported``)."""

    def describe(self) -> str:
        status = f"HTTP {self.status}" if self.status else self.outcome.value
        return f"{self.deployment}: {status}: {self.message}"


class AllAttemptsFailedError(StellwerkError):
    """Every candidate deployment failed; ``attempts`` says how each one did."""

    error_type = "upstream_error"

    def __init__(self, model: str, attempts: Sequence[Attempt], status: int = 502) -> None:
        self.model = model
        self.attempts = list(attempts)
        self.status = status
        self.code = "upstream_unavailable" if status >= 500 else None
        if attempts:
            tried = "; ".join(a.describe() for a in attempts)
            message = f"No deployment of model '{model}' could answer after {len(attempts)} attempt(s). Tried: {tried}"
        else:
            message = f"No deployment of model '{model}' is available."
        super().__init__(message)
