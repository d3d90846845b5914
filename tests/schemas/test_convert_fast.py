"""The codec's own conversion of dates, instants and union branches (``schemas.convert``, for
speed) writes the same bytes as leaving them to fastavro, for every registered record and any
values; and a naive instant is still fastavro's to convert."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings

from schemas.codec import Codec
from schemas.convert import to_avro
from schemas.registry import registered_classes
from tests.schemas.strategies import records

CODEC = Codec.default()


@dataclass(frozen=True)
class Inner:
    at: datetime
    on: date
    note: str | None
    maybe_at: datetime | None
    maybe_on: date | None


@dataclass(frozen=True)
class Outer:
    inner: Inner | None
    inners: tuple[Inner, ...]


def _written(parsed: object, record: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, parsed, record)
    return buf.getvalue()


@pytest.mark.parametrize("full_name", sorted(registered_classes()))
def test_every_registered_record_is_written_the_same_as_fastavro_writes_it(full_name: str) -> None:
    cls = registered_classes()[full_name]
    parsed = CODEC.catalogue.current[full_name].parsed
    fast, plain = to_avro(cls), to_avro(cls, plain=True)

    @settings(max_examples=80, deadline=None)
    @given(records(cls))
    def same(record: object) -> None:
        assert _written(parsed, fast(record)) == _written(parsed, plain(record))

    same()


def test_an_instant_is_milliseconds_since_the_epoch_as_fastavro_counts_them() -> None:
    from fastavro._logical_writers_py import prepare_timestamp_millis

    from schemas.convert import _millis

    for instant in (datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC),
                    datetime(9999, 12, 30, 23, 59, 59, 999_000, tzinfo=UTC), datetime(2026, 11, 29, 18, 0, tzinfo=UTC)):
        assert _millis(instant) == prepare_timestamp_millis(instant, {})
    naive = datetime(2026, 1, 1)
    assert _millis(naive) is naive  # fastavro's own rule (local time) applies to a naive one


def test_an_optional_record_holding_dates_and_optionals_is_written_as_fastavro_writes_it() -> None:
    """No registered record has one yet: a record inside a union is found by fastavro's
    validator, which takes neither a named branch nor a logical type's number inside it."""
    from fastavro import parse_schema

    inner = {"type": "record", "name": "Inner", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "on", "type": {"type": "int", "logicalType": "date"}},
        {"name": "note", "type": ["null", "string"]},
        {"name": "maybe_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "maybe_on", "type": ["null", {"type": "int", "logicalType": "date"}]}]}
    parsed = parse_schema({"type": "record", "name": "Outer", "fields": [
        {"name": "inner", "type": ["null", inner]}, {"name": "inners", "type": {"type": "array", "items": "Inner"}}]})
    at = datetime(2026, 11, 29, 18, tzinfo=UTC)
    value = Inner(at, at.date(), "x", at, at.date())
    record = Outer(value, (value, Inner(datetime(1969, 1, 1, tzinfo=UTC), date(1, 1, 1), None, None, None)))
    assert _written(parsed, to_avro(Outer)(record)) == _written(parsed, to_avro(Outer, plain=True)(record))
