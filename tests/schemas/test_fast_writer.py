"""The generated writers (``schemas.fast_writer``) write exactly fastavro's bytes for every
registered record and any values, refuse what fastavro refuses with the same code, and stand
aside for a field type they do not write."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import reference as ref
from processors.events import DeadlineDue
from schemas.codec import Codec, CodecError
from schemas.convert import to_avro
from schemas.fast_writer import compile_writer, write_long
from schemas.records import Notification
from schemas.registry import registered_classes
from tests.schemas.strategies import records

CODEC = Codec.default()


def _fastavro(full_name: str, record: object) -> bytes:
    """What the codec wrote before the generated writers: ``schemas.convert``'s conversions, then
    fastavro (the same bytes as leaving every conversion to fastavro, ``test_convert_fast``)."""
    version = CODEC.catalogue.current[full_name]
    buf = io.BytesIO()
    buf.write(CODEC._writers[type(record)].prefix)
    schemaless_writer(buf, version.parsed, to_avro(type(record))(record))
    return buf.getvalue()


def _notification(**changes: object) -> Notification:
    base = Notification(notification_id="n-1", recipient="akasse:1234", citizen_key="k" * 43, kind="handover",
                        cause_event_id="e-1", cause_type="DeadlineDue", created_at=datetime(2026, 11, 30, tzinfo=UTC),
                        personal=b"sealed", details={"case_id": "c-1"})
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_every_registered_record_has_a_generated_writer() -> None:
    """None falls back today: a schema change that made one would lose the speed unnoticed."""
    assert [name for name, cls in registered_classes().items() if CODEC._writers[cls].fast is None] == []


@pytest.mark.parametrize("full_name", sorted(registered_classes()))
def test_every_registered_record_is_written_byte_for_byte_as_fastavro_writes_it(full_name: str) -> None:
    cls = registered_classes()[full_name]

    @settings(max_examples=120, deadline=None)
    @given(records(cls))
    def same(record: object) -> None:
        assert CODEC.encode(record) == _fastavro(full_name, record)
        assert CODEC.decode(CODEC.encode(record)) == record

    same()


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_a_long_is_fastavro_s_zigzag_varint(n: int) -> None:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema("long"), n)
    assert write_long(n) == buf.getvalue()


@pytest.mark.parametrize("n", [0, 1, -1, 63, 64, -64, -65, 2047, 2048, 4095, 4096, -4096, 2**31, -(2**63), 2**63 - 1])
def test_a_long_at_each_width_boundary_is_fastavro_s_varint(n: int) -> None:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema("long"), n)
    assert write_long(n) == buf.getvalue()


def test_lengths_and_counts_past_the_small_table_are_written_as_fastavro_writes_them() -> None:
    record = _notification(notification_id="ø" * 5000, personal=b"\x00" * 70_000,
                           details={f"k{i}": "v" * i for i in range(300)})
    assert CODEC.encode(record) == _fastavro("dk.dfdg.out.Notification", record)


def test_a_naive_instant_is_left_to_fastavro_s_own_rule() -> None:
    record = _notification(created_at=datetime(2026, 1, 1, 12, 30))
    assert CODEC.encode(record) == _fastavro("dk.dfdg.out.Notification", record)


@pytest.mark.parametrize("bad", [
    {"notification_id": None},                      # a required string missing
    {"personal": "not bytes"},                      # the wrong type in a union's branch
    {"created_at": "2026-11-30"},                   # an instant that is not one
    {"details": {"case_id": 7}},                    # a map value of the wrong type
])
def test_a_value_outside_its_type_is_refused_as_unencodable(bad: dict[str, object]) -> None:
    with pytest.raises(CodecError) as caught:
        CODEC.encode(_notification(**bad))
    assert caught.value.code == ref.E106_UNENCODABLE_RECORD


def test_a_long_past_64_bits_is_refused_as_fastavro_refuses_it() -> None:
    with pytest.raises(OverflowError):
        write_long(2**63)
    with pytest.raises(OverflowError):
        write_long(-(2**63) - 1)


def test_a_required_string_of_the_timer_s_record_missing_is_refused_as_unencodable() -> None:
    due = DeadlineDue(event_id="e", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="p",
                      deadline_id="d", rule="R3.1", due_date=date(2026, 1, 1), case_id=None)  # type: ignore[arg-type]
    with pytest.raises(CodecError) as caught:
        CODEC.encode(due)
    assert caught.value.code == ref.E106_UNENCODABLE_RECORD


class Colour(Enum):
    RED = "RED"
    BLUE = "BLUE"


@dataclass(frozen=True)
class Inner:
    at: datetime


@dataclass(frozen=True)
class Outer:
    inner: Inner | None


@dataclass(frozen=True)
class Painted:
    colour: Colour
    colours: tuple[Colour, ...]
    count: int
    maybe: int | None


_PAINTED = {"type": "record", "name": "Painted", "fields": [
    {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "BLUE"]}},
    {"name": "colours", "type": {"type": "array", "items": "Colour"}},
    {"name": "count", "type": "int"},
    {"name": "maybe", "type": ["int", "null"]}]}


def test_a_record_inside_a_record_is_left_to_fastavro() -> None:
    schema = {"type": "record", "name": "Outer", "fields": [{"name": "inner", "type": ["null", {
        "type": "record", "name": "Inner", "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}]}]}
    assert compile_writer(schema, Outer) is None


def test_a_named_type_used_again_by_name_is_left_to_fastavro() -> None:
    """``colours`` names the enum ``colour`` defines: no generated writer, fastavro resolves names."""
    assert compile_writer(_PAINTED, Painted) is None


def test_an_enum_an_int_and_a_union_with_null_second_are_written_as_fastavro_writes_them() -> None:
    schema = dict(_PAINTED, fields=[*_PAINTED["fields"][:1],  # type: ignore[misc]
                                    {"name": "colours", "type": {"type": "array", "items": {
                                        "type": "enum", "name": "Colour2", "symbols": ["RED", "BLUE"]}}},
                                    *_PAINTED["fields"][2:]])  # type: ignore[misc]
    write = compile_writer(schema, Painted)
    assert write is not None
    parsed = parse_schema(schema)
    for record in (Painted(Colour.BLUE, (Colour.RED, Colour.BLUE), -5, None), Painted(Colour.RED, (), 2**31 - 1, 3)):
        buf = io.BytesIO()
        schemaless_writer(buf, parsed, to_avro(Painted, plain=True)(record))
        assert write(record) == buf.getvalue()
    with pytest.raises(ValueError):
        write(Painted(Colour.RED, (), 2**31, None))  # outside Avro's int, as schemas.convert refuses it


def test_an_instant_written_again_in_another_zone_or_as_naive_is_written_as_fastavro_writes_it() -> None:
    """Instants are remembered once written (a step stamps all it writes with one "now"): an
    equal instant given in another zone is the same number, a naive one is still fastavro's."""
    from datetime import timedelta, timezone

    at = datetime(2026, 11, 30, 12, 0, 0, 123_000, tzinfo=UTC)
    for created_at in (at, at.astimezone(timezone(timedelta(hours=1))), at.replace(tzinfo=None), at):
        record = _notification(created_at=created_at)
        assert CODEC.encode(record) == _fastavro("dk.dfdg.out.Notification", record)


_ODD_VALUES = [None, "x", "1.5", True, 1.5, 2.0, b"x", 2**40, -(2**70), (), {}, ("a",), {"k": "v"}]


def _int_field(cls: type, name: str) -> bool:
    import typing

    hint = typing.get_type_hints(cls)[name]
    return hint is int or int in typing.get_args(hint)


@pytest.mark.parametrize("full_name", sorted(registered_classes()))
def test_an_odd_value_in_any_field_is_refused_or_written_exactly_as_fastavro_does(full_name: str) -> None:
    """Refused with E106 wherever fastavro refuses (never another exception), the same bytes
    wherever it writes. One difference, chosen: a float in an int field is refused here, where
    fastavro would write it truncated."""
    import copy

    cls = registered_classes()[full_name]
    names = [f.name for f in dataclasses.fields(cls)]

    @settings(max_examples=10, deadline=None)
    @given(records(cls))
    def same(record: object) -> None:
        for name in names:
            for odd in _ODD_VALUES:
                one(record, name, odd)

    def one(record: object, name: str, odd: object) -> None:
        changed = copy.copy(record)
        object.__setattr__(changed, name, odd)
        try:
            slow: bytes | None = _fastavro(full_name, changed)
        except Exception:  # noqa: BLE001 - whatever fastavro raises, the codec refused it (E106)
            slow = None
        try:
            fast: bytes | None = CODEC.encode(changed)
        except CodecError as exc:
            assert exc.code == ref.E106_UNENCODABLE_RECORD
            fast = None
        if slow is not None and fast is None:
            assert isinstance(odd, float) and _int_field(cls, name), (name, odd)
        else:
            assert fast == slow, (name, odd)

    same()


def test_a_fold_or_a_date_given_as_an_aware_instant_is_not_mistaken_for_one_written_before() -> None:
    """Two instants of one zone an hour apart compare equal across a fold; an aware instant given
    as a date compares equal to one of another day. Neither may reuse bytes written for the other."""
    from zoneinfo import ZoneInfo

    copenhagen = ZoneInfo("Europe/Copenhagen")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=copenhagen)  # the hour the clocks go back
    for at in (first.replace(fold=1), first, first.replace(fold=1)):
        record = _notification(created_at=at)
        assert CODEC.encode(record) == _fastavro("dk.dfdg.out.Notification", record)
    from datetime import timedelta, timezone

    for day in (datetime(2026, 1, 1, 23, tzinfo=UTC), datetime(2026, 1, 2, 0, tzinfo=timezone(timedelta(hours=1)))):
        due = DeadlineDue(event_id="e", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="p",
                          deadline_id="d", rule="R3.1", due_date=day, case_id="c")
        assert CODEC.encode(due) == _fastavro("dk.dfdg.internal.DeadlineDue", due)
