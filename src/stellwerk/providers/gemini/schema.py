"""JSON Schema (as OpenAI clients write it) → Gemini's ``Schema`` (an OpenAPI 3.0 subset).

Gemini rejects keys outside its subset (``additionalProperties``, ``$schema``,
``strict``…), wants ``nullable`` instead of ``"type": ["string", "null"]``,
accepts ``enum`` only on strings and has no ``$ref``. Tool ``parameters`` and
``response_format`` schemas pass through :func:`to_gemini_schema`, which keeps
what Gemini understands, inlines local ``$ref``s and drops the rest. Constraints
Gemini cannot express (exclusive bounds, ``multipleOf``, ``uniqueItems``) are
appended to the ``description`` as ``{key: value, ...}``, as the Anthropic SDK
does for its structured outputs, so that the model may still follow them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_gemini_schema"]

_KEEP = frozenset({
    "format", "title", "description", "nullable", "maxItems", "minItems", "minProperties", "maxProperties",
    "minLength", "maxLength", "pattern", "example", "default", "minimum", "maximum", "propertyOrdering", "required",
})
_MAX_DEPTH = 16
_HINTS = ("exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems")


def to_gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Convert one schema; local ``$ref``s (``#/$defs/X``, ``#/definitions/X``) are inlined."""
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update({f"#/{key}/{name}": value for name, value in schema[key].items()})
    return _convert(schema, defs, 0)


def _convert(schema: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _convert({**defs.get(ref, {}), **{k: v for k, v in schema.items() if k != "$ref"}}, defs, depth + 1)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _KEEP}
    kind = schema.get("type")
    types = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    if "null" in types:
        out["nullable"] = True
        types = [t for t in types if t != "null"]
    variants = [v for v in schema.get("anyOf") or schema.get("oneOf") or () if isinstance(v, dict)]
    if any(v.get("type") == "null" for v in variants):
        out["nullable"] = True
        variants = [v for v in variants if v.get("type") != "null"]
    if len(types) == 1:
        out["type"] = types[0].upper()
    elif len(types) > 1:
        variants = [{"type": t} for t in types] + variants
    if len(variants) == 1 and "type" not in out:
        merged = _convert(variants[0], defs, depth + 1)
        return {**merged, **{k: v for k, v in out.items() if k != "type"}}
    if variants:
        out["anyOf"] = [_convert(v, defs, depth + 1) for v in variants]
    if "const" in schema and isinstance(schema["const"], str):
        out["enum"], out["type"] = [schema["const"]], "STRING"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(e, str) for e in enum):
        out["enum"] = enum
        out.setdefault("type", "STRING")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _convert(value, defs, depth + 1) for name, value in properties.items()}
    if isinstance(schema.get("items"), dict):
        out["items"] = _convert(schema["items"], defs, depth + 1)
    hints = [f"{key}: {schema[key]}" for key in _HINTS if key in schema]
    if hints:
        described = out.get("description")
        out["description"] = (f"{described}\n\n" if isinstance(described, str) else "") + "{" + ", ".join(hints) + "}"
    return out
