"""A deterministic JSON value that satisfies a JSON schema: what the sim answers for structured output and
tool arguments, so that SDK ``parse`` helpers (pydantic models, zod schemas) accept it.

Covered: ``$ref`` into ``$defs`` / ``definitions`` (nested models), ``const``, ``enum``, ``anyOf`` /
``oneOf`` (the first option that is not ``null``), ``allOf`` (merged), ``type`` (or a list of them; Gemini's
upper-case names too), required properties (all properties when ``additionalProperties`` is false and
nothing is required: strict schemas list every property as required anyway), numeric bounds
(``minimum``, ``maximum``, exclusive ones, ``multipleOf``), string lengths and the common ``format``\\ s
(date, date-time, time, email, uri, uuid), and ``minItems``. Not ``pattern``: a string stays ``"sim"``.

Like a model, the sim also follows constraints written into a ``description`` as ``{key: value, ...}``: that is
where the Anthropic SDK's ``messages.parse`` (and the gateway's Gemini translation) put the ones the API
cannot express.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["schema_example"]

_MAX_DEPTH = 12
_HINT = re.compile(r"\{((?:\w+: [^,{}]+)(?:, \w+: [^,{}]+)*)\}\s*$")
_HINTED = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                     "maxLength", "minItems", "format"})
_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00", "email": "sim@example.com",
            "uri": "https://example.com/sim", "url": "https://example.com/sim",
            "uuid": "00000000-0000-4000-8000-000000000000", "ipv4": "127.0.0.1", "hostname": "example.com"}


def schema_example(schema: object) -> Any:
    """A value for ``schema`` (``{}`` for a schema that is not an object)."""
    if not isinstance(schema, dict):
        return {}
    return _Example(schema).value(schema, 0)


class _Example:
    __slots__ = ("_defs",)

    def __init__(self, root: dict[str, Any]) -> None:
        defs: dict[str, Any] = {}
        for key in ("$defs", "definitions"):
            found = root.get(key)
            if isinstance(found, dict):
                defs.update({f"#/{key}/{name}": value for name, value in found.items()})
        defs["#"] = root
        self._defs = defs

    def value(self, schema: object, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return "sim"
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.value(self._defs.get(ref), depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                return self.value((usable or options)[0], depth + 1)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                resolved = self._defs.get(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
                if isinstance(resolved, dict):
                    merged = {**resolved, **merged, "properties": {**(resolved.get("properties") or {}),
                                                                   **(merged.get("properties") or {})},
                              "required": [*(resolved.get("required") or []), *(merged.get("required") or [])]}
            return self.value(merged, depth + 1)
        return self._typed(_with_hints(schema), _kind(schema, depth), depth)

    def _typed(self, schema: dict[str, Any], kind: str | None, depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = schema.get("minItems")
            count = count if isinstance(count, int) and 0 < count <= 16 else 0
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
        return {name: self.value(props.get(name, {}), depth + 1) for name in dict.fromkeys(names)}


def _with_hints(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the constraints its description states (``{minimum: 2, minLength: 5}``)."""
    described = schema.get("description")
    found = _HINT.search(described) if isinstance(described, str) else None
    if found is None:
        return schema
    hints: dict[str, Any] = {}
    for pair in found.group(1).split(", "):
        key, _, text = pair.partition(": ")
        if key in _HINTED and key not in schema:
            try:
                hints[key] = float(text) if "." in text else int(text)
            except ValueError:
                hints[key] = text
    return {**schema, **hints}


def _kind(schema: dict[str, Any], depth: int) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini's OpenAPI schemas say "OBJECT", "STRING", ...
    if "properties" in schema or depth == 0:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    value: float = 1
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        value = max(value, low)
    if isinstance(high, (int, float)) and not isinstance(high, bool):
        value = min(value, high)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = math.ceil(value / step) * step
    return math.ceil(value) if integer else float(value)


def _string(schema: dict[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format")), "sim")
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if isinstance(shortest, int) and len(text) < shortest:
        text += "s" * (shortest - len(text))
    if isinstance(longest, int) and 0 <= longest < len(text):
        text = text[:longest]
    return text
