"""Avro writers made once per record class: straight-line Python that writes the same bytes as
fastavro, for the field types the catalogue uses.

fastavro walks the parsed schema for every record it writes: each field's type is looked up,
each union branch matched, each value passed through a converter first. A due deadline writes
three records (its ``DeadlineDue`` and two notifications), and on the worker that walk was
~10% of the CPU of a burst of them. The shape of a record never changes after start, so this
turns it into one function per class, once: read each attribute, turn it into bytes, join.
A notification takes ~4.5 µs instead of ~9-13.

What it writes: the primitive types, ``timestamp-millis`` and ``date``, enums, a union of
``null`` and one of those, and arrays and maps of them. A class with any other field type
(a record inside a record, a union of two non-null types) gets no function, and fastavro
writes it as before. ``tests/schemas/test_fast_writer.py`` holds every registered record's
bytes equal to fastavro's for any values, and a value of the wrong type in any field refused
(E106) wherever fastavro refuses it. One refusal is this module's own: a float in an int field,
which fastavro would write truncated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from schemas.convert import RangeError
from schemas.field_types import FieldType, record_plan

__all__ = ["LeftToFastavro", "Writer", "compile_writer", "write_long"]

Writer = Callable[[object], bytes]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Zig-zag varints of 0..4095: every length and count a record here holds, and most small numbers.
_SMALL = tuple(bytes(b) for b in (
    [(z & 0x7F) | 0x80, z >> 7] if z >= 0x80 else [z] for z in ((n << 1) for n in range(4096))))
_DOUBLE = struct.Struct("<d").pack


class LeftToFastavro(Exception):
    """Not an error: a value whose conversion is fastavro's own; the caller writes the record with it."""


def write_long(n: int) -> bytes:
    """Avro's zig-zag varint of a 64-bit ``n`` (``OverflowError`` outside that range, as fastavro's)."""
    if 0 <= n < 4096:
        return _SMALL[n]
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError("a long is outside Avro's 64-bit range")
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _int(n: int) -> bytes:
    if not _INT_MIN <= n <= _INT_MAX:
        raise RangeError("an int field is outside Avro's 32-bit range")
    return write_long(n)


# Instants and dates written lately, one table each: a step stamps every record it writes with
# the same "now", and its 6-byte varint cost more than the rest of a record's strings. Only
# instants in UTC and plain dates are kept: two instants of one other zone compare equal across
# a fold (the hour a clock sets back) though they are an hour apart, and an aware datetime given
# as a date compares equal to others of other days.
_REMEMBERED = 4096
_instants: dict[datetime, bytes] = {}
_dates: dict[date, bytes] = {}


def _millis(value: datetime) -> bytes:
    utc = value.tzinfo is UTC
    if utc and (written := _instants.get(value)) is not None:
        return written
    if value.tzinfo is None:
        raise LeftToFastavro("a naive instant")  # its own rule (local time), as ``schemas.convert`` leaves it
    delta = value - _EPOCH
    written = write_long((delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000)
    if utc:
        _remember(_instants, value, written)
    return written


def _days(value: date) -> bytes:
    plain = type(value) is date
    if plain and (written := _dates.get(value)) is not None:
        return written
    written = write_long(value.toordinal() - _DAYS_SHIFT)
    if plain:
        _remember(_dates, value, written)
    return written


def _remember(table: dict[Any, bytes], value: Any, written: bytes) -> None:
    if len(table) >= _REMEMBERED:
        table.clear()
    table[value] = written


def _text(value: str) -> bytes:
    data = value.encode()
    size = len(data)
    # The length's varint from the table, without the call: a notification writes two dozen strings.
    return (_SMALL[size] if size < 4096 else write_long(size)) + data


def _bytes(value: bytes) -> bytes:
    return write_long(len(value)) + value


def _boolean(value: object) -> bytes:
    return b"\x01" if value else b"\x00"


def _double(value: float) -> bytes:
    return _DOUBLE(float(value))  # fastavro's conversion; its ValueError, TypeError or OverflowError


def _enum(symbols: tuple[str, ...], held_as_enum: bool) -> Callable[[Any], bytes]:
    index = {symbol: write_long(i) for i, symbol in enumerate(symbols)}
    if held_as_enum:
        return lambda value: index[value.value]  # KeyError for a symbol the schema lacks (fastavro: ValueError)
    return lambda value: index[value]


def _array(item: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def write(values: Any) -> bytes:
        if len(values) == 0:  # TypeError for None, as fastavro's
            return b"\x00"
        return write_long(len(values)) + b"".join([item(v) for v in values]) + b"\x00"
    return write


def _map(value_of: Callable[[Any], bytes]) -> Callable[[Mapping[str, Any]], bytes]:
    def write(values: Mapping[str, Any]) -> bytes:
        if len(values) == 0:  # TypeError for None, as fastavro's
            return b"\x00"
        return (write_long(len(values)) + b"".join([_text(k) + value_of(v) for k, v in values.items()])
                + b"\x00")
    return write


def _optional(null_index: int, inner: Callable[[Any], bytes], numeric: bool) -> Callable[[Any], bytes]:
    null, other = write_long(null_index), write_long(1 - null_index)

    def write(value: Any) -> bytes:
        if value is None:
            return null
        if numeric and type(value) is bool:
            # fastavro finds a union's branch by validating the value, and its int takes no bool.
            raise TypeError("a bool in an optional number")
        return other + inner(value)
    return write


_PRIMITIVES: dict[str, Callable[[Any], bytes]] = {
    "string": _text,
    "bytes": _bytes,
    "int": _int,
    "long": _int,  # schemas.convert.to_avro holds every Python int to Avro's int
    "boolean": _boolean,
    "double": _double,
    "timestamp-millis": _millis,
    "date": _days,
}


def _writer(ft: FieldType) -> Callable[[Any], bytes]:
    if ft.inner is not None:
        inner = _writer(ft.inner)
        if ft.kind == "optional":
            return _optional(ft.null_index, inner, ft.inner.kind in ("int", "long", "double"))
        return _array(inner) if ft.kind == "array" else _map(inner)
    if ft.kind == "enum":
        return _enum(ft.symbols, ft.enum is not None)
    if ft.enum is not None:
        return lambda value: _text(value.value)  # a string held as an Enum
    return _PRIMITIVES[ft.kind]


def compile_writer(schema: Mapping[str, Any], cls: type, prefix: bytes = b"") -> Writer | None:
    """A function writing an instance of dataclass ``cls`` as ``prefix`` and the Avro body of record
    ``schema``, or None when a field's type is outside ``schemas.field_types``."""
    plan = record_plan(schema, cls)
    if plan is None:
        return None
    namespace: dict[str, Any] = {"_prefix": prefix, "_small": _SMALL, "_long": write_long}
    lines, parts = ["def write(o):"], ["_prefix"]
    for i, (name, ft) in enumerate(plan):
        if ft.kind == "string" and ft.enum is None:
            # The commonest field, written out here: its length and its bytes as two parts.
            lines.append(f"    v{i} = o.{name}.encode()")
            parts += [f"_small[len(v{i})] if len(v{i}) < 4096 else _long(len(v{i}))", f"v{i}"]
        else:
            namespace[f"_w{i}"] = _writer(ft)
            parts.append(f"_w{i}(o.{name})")
    lines.append("    return b''.join((")
    lines.extend(f"        {part}," for part in parts)
    lines.append("    ))")
    exec("\n".join(lines), namespace)  # noqa: S102 - identifiers checked by record_plan, no values in the source
    made: Writer = namespace["write"]
    return made
