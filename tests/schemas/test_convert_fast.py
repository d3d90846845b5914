"""The codec's own conversion of dates, instants and union branches (``schemas.convert``, for
speed) writes the same bytes as leaving them to fastavro, for every registered record and any
values; and a naive instant is still fastavro's to convert."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings

from schemas.codec import Codec
from schemas.convert import to_avro
from schemas.registry import registered_classes
from tests.schemas.strategies import records

CODEC = Codec.default()


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
