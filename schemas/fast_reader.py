"""Avro readers made once per record class: the body written with the class's current schema,
read straight into the dataclass, as fastavro and ``schemas.convert.from_avro`` together build it.

fastavro reads a body into a dict by walking the parsed schema, and ``from_avro`` then builds
the dataclass from that dict: every event is decoded this way at the door and again in the
citizen step, ~9% of a draining worker's CPU. A record written with the current schema (the
worker's own records, and every publisher on the current contract) has one shape, so this turns
it into one function per class that reads each field in order and calls the class once. A body
written with an older schema version still goes through fastavro, which resolves it.

What it reads: the types ``schemas.fast_writer`` writes, and arrays and maps in blocks of any
size (a negative count followed by the block's size in bytes, as Java writers may send them).
Anything malformed raises: a length or count that is negative or runs past the end, a union or
enum index out of range, bytes that are not UTF-8, a number that does not fit its type, bytes
left after the body, a varint of more than 64 bits (fastavro keeps its low 64 bits and reads
on), a negative union index (fastavro takes it from the end of the union's list): the two
bodies it reads that are refused here (docs/changes.md). ``tests/schemas/test_fast_reader.py``
holds the result equal to fastavro's for every registered record, and refuses what fastavro
refuses.
"""

from __future__ import annotations

import struct
import types
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.convert import RangeError
from schemas.field_types import FieldType, record_plan

__all__ = ["Malformed", "Reader", "compile_reader"]

# (the body, where it starts) -> the record.
Reader = Callable[[bytes, int], object]
# (the body, where a value starts) -> (the value, where the next starts).
_Field = Callable[[bytes, int], tuple[Any, int]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_DOUBLE = struct.Struct("<d").unpack_from


class Malformed(ValueError):
    """The body does not hold a value of its schema."""


def _long(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]  # IndexError past the end
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    z, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = data[pos]
        z |= (b & 0x7F) << shift
        if b < 0x80 and (shift < 63 or b < 2):
            return (z >> 1) ^ -(z & 1), pos + 1
        shift += 7
        if shift > 63:
            # More than 64 bits: fastavro would keep the low 64 and read on; no writer sends it.
            raise Malformed("a varint longer than 64 bits")


def _size(data: bytes, pos: int) -> tuple[int, int]:
    n, pos = _long(data, pos)
    if n < 0 or pos + n > len(data):
        raise Malformed("a length runs past the body")
    return n, pos


def _bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _size(data, pos)
    return data[pos:pos + n], pos + n


def _text(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _size(data, pos)
    return data[pos:pos + n].decode(), pos + n  # UnicodeDecodeError, a ValueError, for bytes not UTF-8


def _int(data: bytes, pos: int) -> tuple[int, int]:
    n, pos = _long(data, pos)
    if not _INT_MIN <= n <= _INT_MAX:
        raise RangeError("an int field is outside Avro's 32-bit range")
    return n, pos


def _boolean(data: bytes, pos: int) -> tuple[bool, int]:
    return data[pos] != 0, pos + 1


def _double(data: bytes, pos: int) -> tuple[float, int]:
    if pos + 8 > len(data):
        raise Malformed("a double runs past the body")
    return _DOUBLE(data, pos)[0], pos + 8


def _instant(data: bytes, pos: int) -> tuple[datetime, int]:
    n, pos = _long(data, pos)
    return _EPOCH + timedelta(microseconds=n * 1000), pos  # fastavro's own arithmetic


def _day(data: bytes, pos: int) -> tuple[date, int]:
    n, pos = _long(data, pos)
    return date.fromordinal(n + _DAYS_SHIFT), pos


def _enum(symbols: tuple[str, ...], make: Callable[[str], Any]) -> _Field:
    values = tuple(_made(make, symbol) for symbol in symbols)

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        i, pos = _long(data, pos)
        if not 0 <= i < len(values):
            raise Malformed("an enum index out of range")
        value = values[i]
        if value is _LACKED:
            raise ValueError("an enum symbol the class lacks")  # as from_avro's Enum(symbol) raises
        return value, pos
    return read


_LACKED = object()


def _made(make: Callable[[str], Any], symbol: str) -> Any:
    try:
        return make(symbol)
    except ValueError:
        return _LACKED


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next block of an array or map (0 at the end)."""
    count, pos = _long(data, pos)
    if count < 0:
        count = -count
        _, pos = _long(data, pos)  # the block's size in bytes, for skipping it
    if count > len(data) - pos:
        raise Malformed("a count runs past the body")  # every item takes a byte at least
    return count, pos


def _array(item: _Field) -> _Field:
    def read(data: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        out: list[Any] = []
        count, pos = _block(data, pos)
        while count:
            for _ in range(count):
                value, pos = item(data, pos)
                out.append(value)
            count, pos = _block(data, pos)
        return tuple(out), pos
    return read


def _map(value_of: _Field) -> _Field:
    def read(data: bytes, pos: int) -> tuple[Mapping[str, Any], int]:
        out: dict[str, Any] = {}
        count, pos = _block(data, pos)
        while count:
            for _ in range(count):
                key, pos = _text(data, pos)
                out[key], pos = value_of(data, pos)
            count, pos = _block(data, pos)
        return types.MappingProxyType(out), pos
    return read


def _optional(null_index: int, inner: _Field) -> _Field:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        i, pos = _long(data, pos)
        if i == null_index:
            return None, pos
        if i != 1 - null_index:
            raise Malformed("a union index out of range")
        return inner(data, pos)
    return read


_PRIMITIVES: dict[str, _Field] = {
    "string": _text,
    "bytes": _bytes,
    "int": _int,
    "long": _int,  # schemas.convert.from_avro holds every Python int to Avro's int
    "boolean": _boolean,
    "double": _double,
    "timestamp-millis": _instant,
    "date": _day,
}


def _reader(ft: FieldType) -> _Field:
    if ft.inner is not None:
        inner = _reader(ft.inner)
        if ft.kind == "optional":
            return _optional(ft.null_index, inner)
        return _array(inner) if ft.kind == "array" else _map(inner)
    if ft.kind == "enum":
        return _enum(ft.symbols, ft.enum or str)
    if ft.enum is not None:
        return _as(_text, ft.enum)  # a string held as an Enum
    return _PRIMITIVES[ft.kind]


def _as(read: _Field, make: Callable[[Any], Any]) -> _Field:
    def read_as(data: bytes, pos: int) -> tuple[Any, int]:
        value, pos = read(data, pos)
        return make(value), pos  # ValueError for a value the Enum lacks, as from_avro's
    return read_as


# ``_text`` written out in the function: most fields are strings, and a call per field was
# most of the time (a one-byte length, the common case, is read without one).
_INLINE_TEXT = (
    "    b = data[pos]",
    "    if b < 128:",
    "        n = (b >> 1) ^ -(b & 1)",
    "        pos += 1",
    "    else:",
    "        n, pos = _long(data, pos)",
    "    end = pos + n",
    "    if n < 0 or end > size:",
    "        raise _Malformed('a length runs past the body')",
    "    VALUE = data[pos:end].decode()",
    "    pos = end",
)


def compile_reader(schema: Mapping[str, Any], cls: type) -> Reader | None:
    """A function reading a body written with record ``schema`` into dataclass ``cls``, or None
    when a field's type is outside ``schemas.field_types``."""
    plan = record_plan(schema, cls)
    if plan is None:
        return None
    namespace: dict[str, Any] = {"_cls": cls, "_Malformed": Malformed, "_long": _long}
    lines = ["def read(data, pos):", "    size = len(data)"]
    for i, (_, ft) in enumerate(plan):
        if ft.kind == "string" and ft.enum is None:
            lines.extend(line.replace("VALUE", f"v{i}") for line in _INLINE_TEXT)
        else:
            namespace[f"_r{i}"] = _reader(ft)
            lines.append(f"    v{i}, pos = _r{i}(data, pos)")
    lines.append("    if pos != size:")
    lines.append("        raise _Malformed('bytes after the body')")
    arguments = ", ".join(f"{name}=v{i}" for i, (name, _) in enumerate(plan))
    lines.append(f"    return _cls({arguments})")
    exec("\n".join(lines), namespace)  # noqa: S102 - identifiers checked by record_plan, no values in the source
    made: Reader = namespace["read"]
    return made
