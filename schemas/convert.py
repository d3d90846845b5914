"""Converters between frozen dataclasses and the plain dicts fastavro reads and writes.

Built once per class from its type hints, so the hot path does no reflection: a record
becomes a tuple of ``(field name, converter or None)`` and a loop over it.
Enums travel as their value, tuples as lists, mappings as dicts. ``int`` fields are
range-checked because fastavro would otherwise write an out-of-range value that other Avro
readers reject.

Writing, dates become days and aware instants milliseconds here, with fastavro's own
arithmetic, and an optional value that is there names its union branch (fastavro's tuple
notation). fastavro would otherwise convert each in Python and try each branch of a union in
turn: a notification took ~17 µs to encode, ~9 µs this way. The bytes are the same;
``tests/schemas/test_convert_fast.py`` holds every registered record to that against the
``plain`` conversion, which leaves all of it to fastavro. Every ``datetime`` field is written
as ``timestamp-millis`` and every ``date`` as ``date`` (that test fails on any other).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

__all__ = ["RangeError", "from_avro", "record_fields", "to_avro"]

Converter = Callable[[Any], Any]
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
# The union branch an optional value of these types is written as (tuple notation).
_BRANCHES: dict[Any, str] = {bytes: "bytes", str: "string", date: "int", datetime: "long"}


class RangeError(ValueError):
    """An ``int`` field's value does not fit Avro's 32-bit ``int``."""


def record_fields(cls: type) -> tuple[str, ...]:
    """The dataclass's field names in declaration order (which must be the schema's order)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def to_avro(cls: type, plain: bool = False) -> Callable[[object], dict[str, Any]]:
    """A function turning an instance of dataclass ``cls`` into a dict fastavro can write;
    ``plain`` leaves dates, instants and union branches to fastavro."""
    plan = _plan(cls, _to_avro_plain if plain else _to_avro)

    def convert(obj: object) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, conv in plan:
            value = getattr(obj, name)
            out[name] = value if conv is None else conv(value)
        return out
    return convert


def from_avro(cls: type) -> Callable[[Mapping[str, Any]], object]:
    """A function building dataclass ``cls`` from the dict fastavro read with the current schema."""
    plan = _plan(cls, _from_avro)

    def convert(raw: Mapping[str, Any]) -> object:
        return cls(**{name: (raw[name] if conv is None else conv(raw[name])) for name, conv in plan})
    return convert


def _plan(cls: type, make: Callable[[Any], Converter | None]) -> tuple[tuple[str, Converter | None], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((name, make(hints[name])) for name in record_fields(cls))


def _check_int(value: Any) -> Any:
    if not _INT_MIN <= value <= _INT_MAX:
        raise RangeError("an int field is outside Avro's 32-bit range")
    return value


def _optional(inner: Converter | None) -> Converter | None:
    if inner is None:
        return None
    return lambda v: None if v is None else inner(v)


def _each(inner: Converter, collect: Callable[[Any], Any]) -> Converter:
    return lambda v: collect(inner(x) for x in v)


def _values(inner: Converter, collect: Callable[[Any], Any]) -> Converter:
    return lambda v: collect((k, inner(x)) for k, x in v.items())


def _non_null(tp: Any) -> list[Any] | None:
    """The non-None members of a union type, or None when ``tp`` is not a union."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return None


def _millis(value: datetime) -> Any:
    """fastavro's ``prepare_timestamp_millis`` for an aware instant; a naive one is left to it."""
    if value.tzinfo is None:
        return value
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _days(value: date) -> int:
    """fastavro's ``prepare_date``."""
    return value.toordinal() - _DAYS_SHIFT


def _branch(inner: Converter | None, branch: str) -> Converter:
    if inner is None:
        return lambda v: None if v is None else (branch, v)
    return lambda v: None if v is None else (branch, inner(v))


def _to_avro(tp: Any) -> Converter | None:
    members = _non_null(tp)
    if members is not None and len(members) == 1 and members[0] in _BRANCHES:
        return _branch(_to_avro(members[0]), _BRANCHES[members[0]])
    if tp is datetime:
        return _millis
    if tp is date:
        return _days
    return _to_avro_plain(tp, _to_avro)


def _to_avro_plain(tp: Any, inner_of: Callable[[Any], Converter | None] | None = None) -> Converter | None:
    """``inner_of`` converts what ``tp`` holds (its members, items, values); by default plain."""
    inner_of = inner_of or _to_avro_plain
    members = _non_null(tp)
    if members is not None:
        # A union of several non-null types is left to fastavro's own branch matching. So is
        # what an optional record, array or map holds, all of it plain: fastavro finds that
        # branch by validating the value, and its validator takes neither a branch named
        # inside it nor a logical type's number.
        return _optional(_to_avro_plain(members[0])) if len(members) == 1 else None
    origin = typing.get_origin(tp)
    if origin is tuple:
        inner = inner_of(typing.get_args(tp)[0])
        return list if inner is None else _each(inner, list)
    if origin in (Mapping, dict):
        inner = inner_of(typing.get_args(tp)[1])
        return dict if inner is None else _values(inner, dict)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: v.value
    if tp is int:
        return _check_int
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return to_avro(tp, plain=inner_of is _to_avro_plain)
    return None


def _from_avro(tp: Any) -> Converter | None:
    members = _non_null(tp)
    if members is not None:
        return _optional(_from_avro(members[0])) if len(members) == 1 else None
    origin = typing.get_origin(tp)
    if origin is tuple:
        inner = _from_avro(typing.get_args(tp)[0])
        return tuple if inner is None else _each(inner, tuple)
    if origin in (Mapping, dict):
        inner = _from_avro(typing.get_args(tp)[1])
        frozen = _values(inner, dict) if inner is not None else dict
        return lambda v: types.MappingProxyType(frozen(v))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp is int:
        return _check_int
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_avro(tp)
    return None
