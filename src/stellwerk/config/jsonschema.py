"""The configuration's JSON Schema, for editors (``stellwerk schema``).

    # yaml-language-server: $schema=./stellwerk.schema.json

Built from the typed schema itself (msgspec), with each field's description taken from the docstring
under it in :mod:`.schema`, so the editor shows the same text as the reference.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from typing import Any

import msgspec

from . import schema
from .schema import Config

__all__ = ["json_schema"]


def _field_docs() -> dict[str, dict[str, str]]:
    """``{class name: {field: docstring}}`` of the structs in :mod:`.schema` (the string right after a field)."""
    docs: dict[str, dict[str, str]] = {}
    for node in ast.parse(inspect.getsource(schema)).body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields: dict[str, str] = {}
        for statement, following in itertools.pairwise(node.body):
            if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                fields[statement.target.id] = inspect.cleandoc(following.value.value)
        docs[node.name] = fields
    return docs


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a Stellwerk configuration file."""
    result: dict[str, Any] = msgspec.json.schema(Config)
    docs = _field_docs()
    for name, definition in result.get("$defs", {}).items():
        for field, prop in definition.get("properties", {}).items():
            text = docs.get(name, {}).get(field)
            if text and "description" not in prop:
                prop["description"] = text
    result["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    result["title"] = "Stellwerk configuration"
    return result
