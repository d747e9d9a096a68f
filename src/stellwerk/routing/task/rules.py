"""Rules: explicit conditions on a request that pick a route before the classifier is asked.

A :class:`Rule` is a route and one or more *conditions*; it matches when every
condition holds, and then says why (``header x-team=ml and prompt >= 4000 chars``).
Rules are tried in order and the first match wins (:func:`first_match`).

Conditions look at a :class:`TaskRequest` only:

- :class:`Header` — a header is present, equals a value, or matches a regex;
- :class:`Metadata` — the same for a key of the request's ``metadata`` object;
- :class:`PromptRegex` — a regex is found in the prompt;
- :class:`Keywords` — any (or all) of some words or phrases occur in the prompt, as
  whole words, ignoring case;
- :class:`Length` — the prompt's length in characters is within bounds.

A :class:`HintRule` is different: the *value* of a header (``x-stellwerk-task``)
or metadata key (``task``) names the route, so a client that knows its task can
say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Condition",
    "Header",
    "HintRule",
    "Keywords",
    "Length",
    "Match",
    "Metadata",
    "PromptRegex",
    "Rule",
    "RuleLike",
    "TaskRequest",
    "first_match",
]


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """What rules and the classifier see of a request.

    ``headers`` keys must be lower case (:meth:`of` lowers them).
    """

    text: str
    """The last user message's text."""
    system: str = ""
    """The system prompt's text (empty when there is none)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, text: str, *, system: str = "", headers: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None
    ) -> TaskRequest:
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        return cls(text=text, system=system, headers=lowered, metadata=dict(metadata or {}))

    @classmethod
    def from_chat(cls, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> TaskRequest:
        """From an OpenAI chat request body: the last user message, the system/developer messages, ``metadata``."""
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
        system = "\n".join(
            _content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )
        metadata = body.get("metadata")
        return cls.of(
            _content_text(user.get("content")) if user else "",
            system=system,
            headers=headers,
            metadata=metadata if isinstance(metadata, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Match:
    route: str
    reason: str


class Condition(Protocol):
    def check(self, request: TaskRequest) -> str | None:
        """A short description of why the condition holds, or None when it does not."""
        ...


class RuleLike(Protocol):
    def match(self, request: TaskRequest) -> Match | None: ...


def _value_check(label: str, value: str | None, equals: str | None, pattern: re.Pattern[str] | None) -> str | None:
    if value is None:
        return None
    if equals is not None:
        return f"{label}={equals}" if value.strip().lower() == equals.lower() else None
    if pattern is not None:
        return f"{label}~/{pattern.pattern}/" if pattern.search(value) else None
    return f"{label} present"


@dataclass(frozen=True, slots=True)
class Header:
    """A header is present; or equals ``equals`` (ignoring case and surrounding blanks); or matches ``pattern``."""

    name: str
    equals: str | None = None
    pattern: re.Pattern[str] | None = None

    def check(self, request: TaskRequest) -> str | None:
        return _value_check(f"header {self.name.lower()}", request.headers.get(self.name.lower()), self.equals, self.pattern)


@dataclass(frozen=True, slots=True)
class Metadata:
    """Like :class:`Header`, for a key of the request's ``metadata``; numbers and booleans compare as text."""

    key: str
    equals: str | None = None
    pattern: re.Pattern[str] | None = None

    def check(self, request: TaskRequest) -> str | None:
        return _value_check(f"metadata.{self.key}", _scalar_text(request.metadata.get(self.key)), self.equals, self.pattern)


@dataclass(frozen=True, slots=True)
class PromptRegex:
    pattern: re.Pattern[str]

    def check(self, request: TaskRequest) -> str | None:
        return f"prompt~/{self.pattern.pattern}/" if self.pattern.search(request.text) else None


@dataclass(frozen=True, slots=True, init=False)
class Keywords:
    """Words or phrases found in the prompt as whole words (ignoring case): ``any`` of them or ``all``."""

    words: tuple[str, ...]
    mode: Literal["any", "all"]
    _patterns: tuple[re.Pattern[str], ...]

    def __init__(self, words: Iterable[str], mode: Literal["any", "all"] = "any") -> None:
        cleaned = tuple(w.strip() for w in words if w.strip())
        if not cleaned:
            raise ValueError("Keywords needs at least one non-blank word")
        object.__setattr__(self, "words", cleaned)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "_patterns", tuple(_word_pattern(w) for w in cleaned))

    def check(self, request: TaskRequest) -> str | None:
        found = [w for w, p in zip(self.words, self._patterns, strict=True) if p.search(request.text)]
        if self.mode == "all":
            return f"keywords all of {list(self.words)}" if len(found) == len(self.words) else None
        return f"keyword {found[0]!r}" if found else None


@dataclass(frozen=True, slots=True)
class Length:
    """The prompt has at least ``min_chars`` and at most ``max_chars`` characters (either bound optional)."""

    min_chars: int | None = None
    max_chars: int | None = None

    def check(self, request: TaskRequest) -> str | None:
        n = len(request.text)
        if self.min_chars is not None and n < self.min_chars:
            return None
        if self.max_chars is not None and n > self.max_chars:
            return None
        bounds = []
        if self.min_chars is not None:
            bounds.append(f">= {self.min_chars}")
        if self.max_chars is not None:
            bounds.append(f"<= {self.max_chars}")
        return f"prompt {' and '.join(bounds)} chars ({n})"


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches when every condition holds. ``label`` names the rule in reasons (e.g. ``rule 2``)."""

    route: str
    conditions: tuple[Condition, ...]
    label: str = "rule"

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError(f"{self.label}: a rule needs at least one condition")

    def match(self, request: TaskRequest) -> Match | None:
        why: list[str] = []
        for condition in self.conditions:
            reason = condition.check(request)
            if reason is None:
                return None
            why.append(reason)
        return Match(self.route, f"{self.label}: {' and '.join(why)}")


@dataclass(frozen=True, slots=True)
class HintRule:
    """The client names its task: the value of ``header`` or of ``metadata[key]``, if it is one of ``routes``.

    The header wins over the metadata key. Unknown names are ignored (the next rules decide).
    """

    routes: frozenset[str]
    header: str | None = "x-stellwerk-task"
    key: str | None = "stellwerk_task"

    def match(self, request: TaskRequest) -> Match | None:
        if self.header is not None:
            value = request.headers.get(self.header.lower())
            if value is not None and value.strip() in self.routes:
                return Match(value.strip(), f"hint header {self.header.lower()}")
        if self.key is not None:
            value = _scalar_text(request.metadata.get(self.key))
            if value is not None and value.strip() in self.routes:
                return Match(value.strip(), f"hint metadata.{self.key}")
        return None


def first_match(rules: Sequence[RuleLike], request: TaskRequest) -> Match | None:
    """The first rule that matches, in order; None when none does."""
    for rule in rules:
        found = rule.match(request)
        if found is not None:
            return found
    return None


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def _content_text(content: object) -> str:
    """A message's text: a string, or the ``text`` of its ``{"type": "text"}`` parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _scalar_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None
