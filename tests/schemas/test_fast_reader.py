"""The generated readers (``schemas.fast_reader``) build exactly what fastavro and ``from_avro``
build for every registered record, refuse what they refuse (E103), and read the blocks other
Avro writers send."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import reference as ref
from schemas.codec import Codec, CodecError
from schemas.convert import from_avro
from schemas.fast_reader import compile_reader
from schemas.fast_writer import write_long
from schemas.records import Notification
from schemas.registry import registered_classes
from tests.schemas.strategies import damaged, records

CODEC = Codec.default()
ANY_RECORD = st.one_of(*[records(cls) for cls in registered_classes().values()])


def _fastavro(data: bytes) -> object:
    """What the codec built before the generated readers: fastavro's dict, then ``from_avro``."""
    full_name, raw = CODEC.decode_dict(data)
    return from_avro(registered_classes()[full_name])(raw)


def _written_again(record: object) -> bytes | None:
    try:
        return CODEC.encode(record)
    except Exception:  # noqa: BLE001 - a record no writer could write came from no writer
        return None


def _outcome(read: Any, data: bytes) -> tuple[str, object]:
    try:
        return "record", read(data)
    except CodecError as exc:
        return "refused", exc.code
    except (ValueError, TypeError):
        return "refused", ref.E103_MALFORMED_BODY  # from_avro's own refusals, which decode maps to E103


def test_every_registered_record_has_a_generated_reader() -> None:
    current = {version.fingerprint for version in CODEC.catalogue.current.values()}
    assert set(CODEC._fast_readers) == current


@pytest.mark.parametrize("full_name", sorted(registered_classes()))
def test_every_registered_record_is_read_as_fastavro_and_from_avro_read_it(full_name: str) -> None:
    cls = registered_classes()[full_name]

    @settings(max_examples=120, deadline=None)
    @given(records(cls))
    def same(record: object) -> None:
        data = CODEC.encode(record)
        fast, slow = CODEC.decode(data), _fastavro(data)
        assert fast == slow == record
        names = [f.name for f in dataclasses.fields(fast)]
        assert [type(getattr(fast, n)) for n in names] == [type(getattr(slow, n)) for n in names]

    same()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_RECORD, st.data())
def test_a_damaged_body_is_refused_or_read_exactly_as_fastavro_does(record: object, data: st.DataObject) -> None:
    damaged_body = damaged(CODEC.encode(record), data, start=10)  # behind a known fingerprint
    fast, slow = _outcome(CODEC.decode, damaged_body), _outcome(_fastavro, damaged_body)
    if fast[0] == "refused" and slow[0] == "record":
        # Refused here, read by fastavro: only a body no Avro writer makes, such as a varint of
        # more than 64 bits (fastavro keeps the low 64) or a negative union branch (fastavro
        # takes it from the end of the union's list). What fastavro read, written again, is
        # other bytes; a body that is what a writer makes of its record must be read.
        assert _written_again(slow[1]) != damaged_body, damaged_body.hex()
    else:
        assert fast == slow or (fast[0] == slow[0] == "refused")
    if fast[0] == "refused":
        assert fast[1] == ref.E103_MALFORMED_BODY


def _notification() -> Notification:
    return Notification(notification_id="n-1", recipient="akasse:1234", citizen_key="k" * 43, kind="handover",
                        cause_event_id="e-1", cause_type="DeadlineDue", created_at=datetime(2026, 11, 30, tzinfo=UTC),
                        personal=None, details={"case_id": "c-1", "due": "2026-11-30"})


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_body_cut_short_anywhere_is_refused_as_malformed(cut: int) -> None:
    data = CODEC.encode(_notification())
    with pytest.raises(CodecError) as caught:
        CODEC.decode(data[:-cut])
    assert caught.value.code == ref.E103_MALFORMED_BODY


def test_a_varint_of_more_than_64_bits_is_refused() -> None:
    """fastavro keeps the low 64 bits of one and reads on; no Avro writer sends one."""
    from processors.events import DeadlineDue

    data = CODEC.encode(DeadlineDue(event_id="e", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="p",
                                    deadline_id="d", rule="R3.1", due_date=datetime(2026, 1, 1).date(), case_id="c"))
    at = data.index(b"\x02p", 12) + 2  # after the producer "p": the varint of deadline_id's length
    end = at + next(i for i, b in enumerate(data[at:]) if b < 0x80) + 1
    for long_varint in (b"\x80" * 9 + b"\x02", b"\x80" * 10 + b"\x00"):
        with pytest.raises(CodecError) as caught:
            CODEC.decode(data[:at] + long_varint + data[end:])
        assert caught.value.code == ref.E103_MALFORMED_BODY


@pytest.mark.parametrize("tail", [b"\x00", b"\x02\x41"])
def test_bytes_after_the_body_are_refused(tail: bytes) -> None:
    with pytest.raises(CodecError) as caught:
        CODEC.decode(CODEC.encode(_notification()) + tail)
    assert caught.value.code == ref.E103_MALFORMED_BODY


def test_a_negative_length_or_a_string_not_utf8_is_refused() -> None:
    data = CODEC.encode(_notification())
    for body in (data[:10] + b"\x01" + data[11:],                  # notification_id's length -1
                    data[:10] + b"\x02\xff" + data[12:]):              # one byte that is not UTF-8
        with pytest.raises(CodecError) as caught:
            CODEC.decode(body)
        assert caught.value.code == ref.E103_MALFORMED_BODY


def test_a_map_in_blocks_with_byte_sizes_as_java_writes_them_is_read() -> None:
    """A negative block count is followed by the block's size in bytes (Avro spec, "Complex Types")."""
    record = _notification()
    plain = CODEC.encode(dataclasses.replace(record, details={}))
    assert plain.endswith(b"\x00")
    pairs = b"".join(_text(key) + _text(value) for key, value in record.details.items())
    blocks = write_long(-len(record.details)) + write_long(len(pairs)) + pairs + write_long(0)
    blocked = plain[:-1] + blocks
    assert CODEC.decode(blocked) == _fastavro(blocked) == record


def _text(value: str) -> bytes:
    return write_long(len(value.encode())) + value.encode()


class Colour(Enum):
    RED = "RED"


@dataclass(frozen=True)
class Painted:
    colour: Colour
    colours: tuple[Colour, ...]
    count: int | None


def test_an_enum_symbol_the_class_lacks_is_refused_when_read_not_when_compiled() -> None:
    schema = {"type": "record", "name": "Painted", "fields": [
        {"name": "colour", "type": {"type": "enum", "name": "C", "symbols": ["RED", "GREEN"]}},
        {"name": "colours", "type": {"type": "array", "items": {"type": "enum", "name": "D", "symbols": ["RED"]}}},
        {"name": "count", "type": ["int", "null"]}]}
    read = compile_reader(schema, Painted)
    assert read is not None
    parsed = parse_schema(schema)

    def body(colour: str, count: int | None) -> bytes:
        buf = io.BytesIO()
        schemaless_writer(buf, parsed, {"colour": colour, "colours": ["RED", "RED"], "count": count})
        return buf.getvalue()
    assert read(body("RED", None), 0) == Painted(Colour.RED, (Colour.RED, Colour.RED), None)
    assert read(body("RED", -7), 0) == Painted(Colour.RED, (Colour.RED, Colour.RED), -7)
    with pytest.raises(ValueError):
        read(body("GREEN", 1), 0)


@dataclass(frozen=True)
class Inner:
    at: datetime


@dataclass(frozen=True)
class Outer:
    inner: Inner


def test_a_record_inside_a_record_is_left_to_fastavro() -> None:
    schema = {"type": "record", "name": "Outer", "fields": [{"name": "inner", "type": {
        "type": "record", "name": "Inner", "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}}]}
    assert compile_reader(schema, Outer) is None


def test_a_negative_union_branch_is_refused_where_fastavro_reads_the_last_branch() -> None:
    """Found by the damaged-body property: branch -1 (the byte 01) of ["null", "string"] is the
    string to fastavro (Python's list[-1]); no Avro writer writes it, and it is refused here."""
    from schemas.archive_records import DeletionCompleted

    data = CODEC.encode(DeletionCompleted(event_id="", citizen_key="k", package_id=None, rule="", areas=(),
                                          archived=False, completed_at=datetime(2000, 1, 1, tzinfo=UTC)))
    at = 10 + 1 + 2  # the prefix, event_id "" and citizen_key "k": then package_id's union branch
    assert data[at] == 0x00
    damaged_body = data[:at] + b"\x01" + data[at + 1:]
    assert _outcome(CODEC.decode, damaged_body) == ("refused", ref.E103_MALFORMED_BODY)
    assert _outcome(_fastavro, damaged_body)[0] == "record"
