"""The one boundary where transport errors become classified upstream errors."""

from __future__ import annotations

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.http.transport import (
    ConnectError,
    ProtocolError,
    ResponseTooLarge,
    TimeoutError_,
    Transport,
    TransportError,
    UpstreamResponse,
)
from stellwerk.providers import Adapter, UpstreamRequest
from stellwerk.providers.base import encode_headers
from stellwerk.redact import redact_bytes, scrub

__all__ = ["classify", "read_body", "send", "transport_error", "with_extra"]


def classify(adapter: Adapter, secrets: tuple[str, ...], status: int, headers: dict[str, str],
             body: bytes) -> UpstreamError:
    """An error answer as a classified error, its credentials redacted before any of it is cut short."""
    return scrub(adapter.classify(status, headers, redact_bytes(body, secrets)), secrets)


def transport_error(err: TransportError, timeout: float | None = None) -> UpstreamError:
    if isinstance(err, TimeoutError_):
        detail = f"no answer within {timeout:g}s" if timeout is not None else "timed out"
        return UpstreamError(Outcome.RETRY_HERE, detail, reason="timeout")
    if isinstance(err, ConnectError):
        return UpstreamError(Outcome.RETRY_HERE, str(err), reason="connect")
    if isinstance(err, ResponseTooLarge):
        # Not the deployment's fault, and any other one would answer as much: fail at once, without retries.
        return UpstreamError(Outcome.CLIENT_ERROR, str(err), status=502, error_type="upstream_error",
                             code="response_too_large", reason="protocol")
    if isinstance(err, ProtocolError):
        return UpstreamError(Outcome.RETRY_HERE, str(err), reason="protocol")
    return UpstreamError(Outcome.RETRY_HERE, str(err) or "connection lost", reason="read")


def with_extra(headers: list[tuple[str, str]] | bytes, extra_headers: bytes) -> list[tuple[str, str]] | bytes:
    """A request's headers plus ``extra_headers`` (encoded ``name: value\r\n`` lines, e.g. ``traceparent``)."""
    if not extra_headers:
        return headers
    return (headers if isinstance(headers, bytes) else encode_headers(headers)) + extra_headers


async def send(transport: Transport, request: UpstreamRequest, timeout: float, connect_timeout: float,
               extra_headers: bytes = b"") -> UpstreamResponse:
    """``extra_headers``: encoded ``name: value\r\n`` lines added for this request (e.g. ``traceparent``)."""
    headers = with_extra(request.headers, extra_headers)
    try:
        return await transport.request(
            request.method, request.url, headers, request.body,
            timeout=timeout, connect_timeout=min(connect_timeout, timeout),
        )
    except TransportError as err:
        raise transport_error(err, timeout) from None


async def read_body(response: UpstreamResponse, timeout: float) -> bytes:
    try:
        return await response.read(timeout=max(0.001, timeout))
    except TransportError as err:
        raise transport_error(err, timeout) from None
