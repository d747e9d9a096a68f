"""Filters: remove the candidates that cannot or should not serve a request, and say why.

The router runs filters before the ranker; any strategy can be combined with
any of them. Each returns the kept candidates (in the order given) and an
``(id, why)`` pair per removed one, and allocates little when nothing is
removed.

- :class:`CapabilityFilter`: the prompt fits the context window; tools,
  images, JSON mode and ``max_tokens`` are supported.

Health is not a filter: open breakers are skipped by the attempt loop, which
also owns panic mode (:mod:`stellwerk.resilience.panic`).
- :class:`LimitsFilter`: no headroom left in the configured RPM/TPM window or
  in the provider's ``x-ratelimit-remaining-*`` for this request's tokens.
- :class:`TagFilter`: tags required by config, a header or the request's
  metadata (``region=eu``).
- :class:`TierFilter`: a quality floor (``min_tier``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from ._support import expected_output, request_tokens
from .base import Candidate, RequestFacts

__all__ = [
    "CapabilityFilter",
    "LimitsFilter",
    "TagFilter",
    "TagFilterOptions",
    "TierFilter",
    "exhausted",
    "headroom",
]

Removed = list[tuple[str, str]]


def _split(candidates: Sequence[Candidate], why: Sequence[str | None]) -> tuple[list[Candidate], Removed]:
    """Keep the candidates whose ``why`` is None; the others are removed with that reason."""
    kept = [c for c, w in zip(candidates, why, strict=True) if w is None]
    removed = [(c.id, w) for c, w in zip(candidates, why, strict=True) if w is not None]
    return kept, removed


class CapabilityFilter:
    """Removes deployments that cannot serve the request as asked.

    - context: ``prompt_tokens + output > context_window`` (output = the
      client's ``max_tokens``, else the expected length), when the window is known;
    - ``max_tokens`` above the deployment's ``max_output_tokens``;
    - tools, images or JSON mode asked for but not supported.
    """

    name = "capability"

    def apply(self, candidates: Sequence[Candidate], request: RequestFacts) -> tuple[list[Candidate], Removed]:
        if not (request.needs_tools or request.needs_vision or request.needs_json or request.max_output_tokens):
            need = request.prompt_tokens + request.expected_output_tokens
            if all(c.context_window is None or need <= c.context_window for c in candidates):
                return list(candidates), []  # the common case, without a call per candidate
        return _split(candidates, [self.problem(c, request) for c in candidates])

    @staticmethod
    def problem(c: Candidate, request: RequestFacts) -> str | None:
        """Why ``c`` cannot serve ``request``; None when it can."""
        if c.context_window is not None:
            need = request.prompt_tokens + expected_output(request)
            if need > c.context_window:
                return f"context: needs ~{need} tokens, window {c.context_window}"
        if request.max_output_tokens is not None and c.max_output_tokens is not None \
                and request.max_output_tokens > c.max_output_tokens:
            return f"max_tokens {request.max_output_tokens} > deployment's {c.max_output_tokens}"
        if request.needs_tools and not c.supports_tools:
            return "no tools"
        if request.needs_vision and not c.supports_vision:
            return "no images"
        if request.needs_json and not c.supports_json:
            return "no JSON mode"
        return None


def _fraction(left: float, limit: float) -> float:
    return left / limit if limit > 0 else -1.0


def headroom(c: Candidate, tokens: int) -> tuple[float, str]:
    """What would be left of ``c``'s tightest limit after one more request of ``tokens`` tokens.

    The fraction of the window's limit still free afterwards, the smallest over

    - configured RPM: ``(rpm_limit - rpm_used - 1) / rpm_limit``
    - configured TPM: ``(tpm_limit - tpm_used - tokens) / tpm_limit``
    - provider requests: ``(remaining_requests - 1) / limit`` and
      provider tokens: ``(remaining_tokens - tokens) / limit``, where ``limit``
      is the provider's ``x-ratelimit-limit-*`` if known, else the configured
      one, else what remains (so a provider without a limit header only counts
      when it runs out).

    Returns ``(fraction, which)``: ``(1.0, "")`` without limits; a negative
    fraction means the request would exceed that limit.
    """
    least, which = 1.0, ""
    if c.rpm_limit is not None:
        f = _fraction(c.rpm_limit - c.rpm_used - 1, c.rpm_limit)
        if f < least:
            least, which = f, "rpm"
    if c.tpm_limit is not None:
        f = _fraction(c.tpm_limit - c.tpm_used - tokens, c.tpm_limit)
        if f < least:
            least, which = f, "tpm"
    if c.remaining_requests is not None:
        r = c.remaining_requests
        f = _fraction(r - 1, c.limit_requests or c.rpm_limit or max(r, 1))
        if f < least:
            least, which = f, "requests"
    if c.remaining_tokens is not None:
        r = c.remaining_tokens
        f = _fraction(r - tokens, c.limit_tokens or c.tpm_limit or max(r, tokens, 1))
        if f < least:
            least, which = f, "tokens"
    return least, which


def exhausted(c: Candidate, which: str, tokens: int) -> str:
    """The reason for a negative :func:`headroom` on limit ``which``."""
    if which == "rpm":
        return f"rpm limit: {c.rpm_used} of {c.rpm_limit} used this window"
    if which == "tpm":
        return f"tpm limit: {c.tpm_used} + ~{tokens} > {c.tpm_limit}"
    if which == "requests":
        return f"provider: {c.remaining_requests} requests remaining"
    return f"provider: {c.remaining_tokens} tokens remaining, needs ~{tokens}"


class LimitsFilter:
    """Removes candidates that this request would push over a rate limit (see :func:`headroom`)."""

    name = "limits"

    def apply(self, candidates: Sequence[Candidate], request: RequestFacts) -> tuple[list[Candidate], Removed]:
        tokens = request_tokens(request)
        kept: list[Candidate] = []
        removed: Removed = []
        for c in candidates:
            left, which = headroom(c, tokens)
            if left < 0:
                removed.append((c.id, exhausted(c, which, tokens)))
            else:
                kept.append(c)
        return kept, removed


class TagFilterOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    require: dict[str, str] = {}
    """Tags every candidate must carry, e.g. ``{region: eu}``. Default none."""
    header: str | None = "x-stellwerk-tags"
    """Request header with further required tags, ``region=eu,tier=gold`` (a bare ``key`` requires
    the tag with any value). None = ignore headers. Default ``x-stellwerk-tags``."""
    metadata_key: str | None = "stellwerk_tags"
    """Key in the request's ``metadata`` with further required tags: a mapping or the header's
    ``k=v,…`` form. None = ignore metadata. Default ``stellwerk_tags``: namespaced, because OpenAI's
    ``metadata`` is the client's own free-form data, and a plain ``tags`` key there is not a routing wish."""


def _parse_tags(value: object) -> dict[str, str | None]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        return {}
    tags: dict[str, str | None] = {}
    for part in value.split(","):
        key, eq, val = part.partition("=")
        if key.strip():
            tags[key.strip()] = val.strip() if eq else None
    return tags


class TagFilter:
    """Keeps the candidates whose tags match every required tag (see :class:`TagFilterOptions`)."""

    name = "tags"

    def __init__(self, options: TagFilterOptions | None = None) -> None:
        self.options = options if options is not None else TagFilterOptions()
        header = self.options.header
        self._header = header.lower() if header else None

    def required(self, request: RequestFacts) -> dict[str, str | None]:
        """The tags ``request`` requires: config, then header, then metadata (later ones win)."""
        tags: dict[str, str | None] = dict(self.options.require)
        if self._header is not None and self._header in request.headers:
            tags.update(_parse_tags(request.headers[self._header]))
        key = self.options.metadata_key
        if key is not None and key in request.metadata:
            tags.update(_parse_tags(request.metadata[key]))
        return tags

    def apply(self, candidates: Sequence[Candidate], request: RequestFacts) -> tuple[list[Candidate], Removed]:
        required = list(self.required(request).items())
        if not required:
            return list(candidates), []
        kept: list[Candidate] = []
        removed: Removed = []
        for c in candidates:
            tags = c.tags
            for key, want in required:
                have = tags.get(key)
                if have is None or (want is not None and have != want):
                    removed.append((c.id, f"needs {_show(key)}={_show(want or '*')} (has {have or 'none'})"))
                    break
            else:
                kept.append(c)
        return kept, removed


def _show(text: str) -> str:
    """Request-supplied text made safe for a reason (reasons may end up in a response header)."""
    text = text[:64]
    return text if text.isascii() and text.isprintable() else ascii(text)


class TierFilter:
    """Removes candidates below a quality tier (``Candidate.tier < min_tier``)."""

    name = "tier"

    def __init__(self, min_tier: int) -> None:
        self.min_tier = min_tier

    def apply(self, candidates: Sequence[Candidate], request: RequestFacts) -> tuple[list[Candidate], Removed]:
        floor = self.min_tier
        if all(c.tier >= floor for c in candidates):
            return list(candidates), []
        return _split(candidates, [None if c.tier >= floor else f"tier {c.tier} < {floor}" for c in candidates])
