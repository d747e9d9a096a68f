"""What the admin API accepts for keys and teams, validated; bad input is a 400 naming the field.

    POST  /admin/keys        KeyInput    {name, team?, models?, rpm?, tpm?, max_parallel?, budget?, expires_at?,
                                          scopes?, tags?, metadata?}
    PATCH /admin/keys/{id}   KeyPatch    the same fields, each optional; ``null`` removes a limit
    POST  /admin/teams       TeamInput   {name, models?, rpm?, tpm?, max_parallel?, budget?}
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from stellwerk.errors import InvalidRequestError
from stellwerk.state.records import Budget, Limit

__all__ = ["KeyInput", "KeyPatch", "TeamInput", "parse", "parse_time"]

Text = Annotated[str, Meta(min_length=1, max_length=256)]
Pattern = Annotated[str, Meta(min_length=1, max_length=256)]
Scope = Literal["inference", "admin"]
Metadata = Annotated[dict[str, Any], Meta(max_length=64)]
T = TypeVar("T")


class KeyInput(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Text
    team: Text | None = None
    models: Annotated[list[Pattern], Meta(max_length=256)] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    max_parallel: Limit | None = None
    budget: Budget | None = None
    expires_at: Text | None = None
    scopes: Annotated[list[Scope], Meta(min_length=1)] | None = None
    tags: Annotated[list[Text], Meta(max_length=64)] | None = None
    metadata: Metadata | None = None


class KeyPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Text | UnsetType = UNSET
    team: Text | UnsetType | None = UNSET
    models: Annotated[list[Pattern], Meta(max_length=256)] | UnsetType | None = UNSET
    rpm: Limit | UnsetType | None = UNSET
    tpm: Limit | UnsetType | None = UNSET
    max_parallel: Limit | UnsetType | None = UNSET
    budget: Budget | UnsetType | None = UNSET
    expires_at: Text | UnsetType | None = UNSET
    scopes: Annotated[list[Scope], Meta(min_length=1)] | UnsetType = UNSET
    tags: Annotated[list[Text], Meta(max_length=64)] | UnsetType | None = UNSET
    metadata: Metadata | UnsetType | None = UNSET


class TeamInput(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$")]
    models: Annotated[list[Pattern], Meta(max_length=256)] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    max_parallel: Limit | None = None
    budget: Budget | None = None


_AT = re.compile(r" - at `\$\.?([^`]*)`")
_NAMED = re.compile(r"(?:missing required|unknown) field `([^`]*)`")


def parse(data: Any, kind: type[T]) -> T:
    """``data`` (parsed JSON) as ``kind``, or :class:`InvalidRequestError` naming the field and what was expected."""
    if not isinstance(data, dict):
        raise InvalidRequestError("Expected a JSON object.")
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as err:
        text = str(err)
        at, named = _AT.search(text), _NAMED.search(text)
        parts = [p for p in (at.group(1) if at else "", named.group(1) if named else "") if p]
        field = ".".join(parts) or None
        reason = _AT.sub("", text)
        noun = kind.__name__.removesuffix("Input").removesuffix("Patch").lower()
        raise InvalidRequestError(f"Invalid {noun}: {field}: {reason}" if field else f"Invalid {noun}: {reason}",
                                  param=field) from None


def parse_time(value: str, field: str = "expires_at") -> float:
    """An RFC 3339 time (``2026-12-31T23:59:59Z``) as Unix time; a 400 naming ``field`` otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequestError(f"{field}: expected an RFC 3339 time with a zone, like 2026-12-31T23:59:59Z; "
                                  f"got {value[:64]!r}", param=field)
    return moment.timestamp()
