"""Which field types the generated writers and readers handle: a record field's Avro type and
its dataclass type hint, matched once into a small tree both of them follow.

A field outside it (a record inside a record, a union of two non-null types, a named type used
again by name) matches nothing, and the whole class is left to fastavro.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

__all__ = ["FieldType", "record_plan"]

# Avro type (or logical type) -> the Python type a field of it holds. ``int`` stands for both Avro
# ints and longs: ``schemas.convert`` holds every Python int to Avro's 32-bit int either way.
_HELD_AS: dict[str, type] = {
    "string": str,
    "bytes": bytes,
    "int": int,
    "long": int,
    "boolean": bool,
    "double": float,
    "timestamp-millis": datetime,
    "date": date,
}
_LOGICAL = {("timestamp-millis", "long"), ("date", "int")}


@dataclass(frozen=True)
class FieldType:
    """``kind``: a key of ``_HELD_AS``, or "enum", "array", "map", "optional".
    ``enum``: the Enum class a string or enum symbol is held as (None: a plain ``str``)."""

    kind: str
    symbols: tuple[str, ...] = ()
    enum: type[Enum] | None = None
    inner: FieldType | None = None
    null_index: int = 0


def record_plan(schema: Mapping[str, Any], cls: type) -> list[tuple[str, FieldType]] | None:
    """(field name, type) for each field of record ``schema`` in order, or None when a field is
    outside these types or the class's fields are not the schema's."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    fields = list(schema["fields"])
    if [str(f["name"]) for f in fields] != names or not all(n.isidentifier() for n in names):
        return None
    plan = [(name, field_type(field["type"], hints[name])) for name, field in zip(names, fields, strict=True)]
    if any(ft is None for _, ft in plan):
        return None
    return [(name, ft) for name, ft in plan if ft is not None]


def field_type(avro: Any, hint: Any) -> FieldType | None:
    """Avro type ``avro`` held as Python type ``hint``; None outside these types."""
    if isinstance(avro, list):
        members = _members(hint)
        if len(avro) != 2 or "null" not in avro or members is None or len(members) != 1:
            return None
        null_index = avro.index("null")
        inner = field_type(avro[1 - null_index], members[0])
        return None if inner is None else FieldType("optional", inner=inner, null_index=null_index)
    if isinstance(avro, Mapping):
        kind, logical = avro.get("type"), avro.get("logicalType")
        if logical is not None:
            return FieldType(logical) if (logical, kind) in _LOGICAL and _HELD_AS[logical] is hint else None
        if kind == "enum":
            enum = _enum(hint)
            return FieldType("enum", tuple(avro["symbols"]), enum) if enum is not None or hint is str else None
        if kind == "array" and typing.get_origin(hint) is tuple:
            item = field_type(avro["items"], typing.get_args(hint)[0])
            return None if item is None else FieldType("array", inner=item)
        if kind == "map" and typing.get_origin(hint) in (Mapping, dict):
            value = field_type(avro["values"], typing.get_args(hint)[1])
            return None if value is None else FieldType("map", inner=value)
        return field_type(kind, hint) if isinstance(kind, str) else None
    if avro == "string" and _enum(hint) is not None:
        return FieldType("string", enum=_enum(hint))
    return FieldType(avro) if isinstance(avro, str) and _HELD_AS.get(avro) is hint else None


def _members(hint: Any) -> list[Any] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return None


def _enum(hint: Any) -> type[Enum] | None:
    return hint if isinstance(hint, type) and issubclass(hint, Enum) else None
