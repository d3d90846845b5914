"""The codec: single-object framing, round trips of every record, and its stable error codes."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.events import AbsenceType, CaseCreated, DataArea, JobseekerRegistered
from processors.reference import ERROR_CODES
from schemas.catalogue import canonical_form, fingerprint64, load_version
from schemas.codec import Codec, CodecError
from schemas.records import DataAreaClosed, Notification
from schemas.registry import registered_classes
from tests.schemas.strategies import records

CODEC = Codec.default()
AT = datetime(2024, 5, 1, 8, 30, 15, 123000, tzinfo=UTC)


def case_created(**changes: Any) -> CaseCreated:
    base = CaseCreated(event_id="4f1c2a7e-0d7b-4c55-9a0e-2b1f3c4d5e6f", occurred_at=AT, producer="asylum-operator",
                       cpr="0101901234", case_id="case-1", receiving_municipality="101",
                       jobcenter_municipality="147", contact_group=18, handover_date=date(2024, 6, 1))
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("full_name", sorted(registered_classes()))
def test_every_registered_record_round_trips(full_name: str) -> None:
    cls = registered_classes()[full_name]

    @settings(max_examples=60, deadline=None)
    @given(records(cls))
    def round_trip(record: object) -> None:
        data = CODEC.encode(record)
        assert data[:2] == b"\xc3\x01"
        assert data[2:10] == CODEC.catalogue.current[full_name].fingerprint
        assert CODEC.decode(data) == record
        assert CODEC.decode_dict(data)[0] == full_name

    round_trip()


def test_decode_gives_typed_values() -> None:
    event = JobseekerRegistered(event_id="e", occurred_at=AT, producer="jobnet", cpr="0101901234", name="Test Person",
                                registration_date=date(2024, 1, 2), municipality="101", benefit_category="DP",
                                unemployment_degree=1.0, job_titles=("smed", "tømrer"))
    decoded = CODEC.decode(CODEC.encode(event))
    assert isinstance(decoded, JobseekerRegistered)
    assert decoded.job_titles == ("smed", "tømrer") and isinstance(decoded.job_titles, tuple)
    assert decoded.occurred_at == AT and decoded.occurred_at.tzinfo is not None
    closed = DataAreaClosed(event_id="x", citizen_key="k", case_id="c", data_area=DataArea.CV,
                            closed_on=date(2024, 6, 1), occurred_at=AT)
    again = CODEC.decode(CODEC.encode(closed))
    assert isinstance(again, DataAreaClosed) and again.data_area is DataArea.CV and again.closed_on == date(2024, 6, 1)


def test_decode_dict_returns_the_raw_record_without_building_the_class() -> None:
    name, raw = CODEC.decode_dict(CODEC.encode(case_created()))
    assert name == "dk.dfdg.events.CaseCreated"
    assert raw["contact_group"] == 18 and raw["handover_date"] == date(2024, 6, 1) and raw["cv_number"] is None


def test_headers_name_the_content_type_and_schema() -> None:
    headers = dict(CODEC.headers_for(case_created()))
    assert headers["content-type"].startswith(b"application/vnd.apache.avro+binary")
    assert headers["avro-schema"] == b"dk.dfdg.events.CaseCreated"
    assert CODEC.full_name(CaseCreated) == "dk.dfdg.events.CaseCreated"


def test_schema_json_is_the_current_writer_schema() -> None:
    schema = json.loads(CODEC.schema_json("dk.dfdg.out.Notification"))
    assert schema["name"] == "Notification" and schema["fields"][0]["doc"]
    with pytest.raises(CodecError) as info:
        CODEC.schema_json("dk.dfdg.out.Nope")
    assert info.value.code == "E102 unknown-schema"


def test_default_codec_is_built_once() -> None:
    assert Codec.default() is Codec.default()


def test_fingerprint_follows_the_spec_test_vector_and_strips_logical_types() -> None:
    # Avro spec: the CRC-64-AVRO fingerprint of "null" is 0x63dd24e7cc258f8a.
    version = load_version({"type": "record", "name": "R", "namespace": "t", "doc": "d",
                            "fields": [{"name": "d", "type": {"type": "int", "logicalType": "date"}, "doc": "x"}]})
    assert version.canonical == '{"name":"t.R","type":"record","fields":[{"name":"d","type":"int"}]}'
    assert canonical_form({"type": "record", "name": "R", "namespace": "t",
                           "fields": [{"name": "d", "type": "int"}]}) == version.canonical
    from fastavro.schema import fingerprint
    assert fingerprint('"null"', "CRC-64-AVRO") == bytes.fromhex("63dd24e7cc258f8a")[::-1].hex()
    assert fingerprint64(version) == int.from_bytes(version.fingerprint, "little", signed=True)


@pytest.mark.parametrize(("data", "code"), [
    (b"", "E101 not-single-object"),
    (b"\xc3\x01\x00", "E101 not-single-object"),
    (b"\x00\x01" + b"\x00" * 20, "E101 not-single-object"),
    (b"\xc3\x01" + b"\xff" * 8 + b"\x00", "E102 unknown-schema"),
])
def test_framing_errors_have_stable_codes(data: bytes, code: str) -> None:
    with pytest.raises(CodecError) as info:
        CODEC.decode(data)
    assert info.value.code == code and code in ERROR_CODES


def test_truncated_or_padded_body_is_malformed() -> None:
    data = CODEC.encode(case_created())
    for bad in (data[:-3], data + b"\x00"):
        with pytest.raises(CodecError) as info:
            CODEC.decode(bad)
        assert info.value.code == "E103 malformed-body"


def test_enum_index_out_of_range_is_malformed() -> None:
    schema = json.loads(CODEC.schema_json("dk.dfdg.events.AbsenceRegistered"))
    for f in schema["fields"]:
        if f["name"] == "absence_type":
            f["type"] = "int"  # same body layout, but lets us write an index the real enum lacks
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(schema), {
        "event_id": "e", "occurred_at": AT, "producer": "p", "cpr": "0101901234", "absence_id": "a",
        "absence_type": 99, "start_date": date(2024, 1, 1), "end_date": None, "registered_by": "",
        "education_benefit_recipient": False})
    header = b"\xc3\x01" + CODEC.catalogue.current["dk.dfdg.events.AbsenceRegistered"].fingerprint
    with pytest.raises(CodecError) as info:
        CODEC.decode(header + body.getvalue())
    assert info.value.code == "E103 malformed-body"


def test_short_map_is_malformed_and_message_has_no_field_values() -> None:
    notification = Notification(notification_id="n", recipient="akasse:12", citizen_key="k", kind="absence-deleted",
                                cause_event_id="c", cause_type="t", created_at=AT, personal=b"0101901234")
    data = CODEC.encode(notification)
    with pytest.raises(CodecError) as info:
        CODEC.decode(data[:-1] + b"\x02")  # map block count 1 with nothing after it
    assert info.value.code == "E103 malformed-body"
    assert "0101901234" not in str(info.value)


def test_unregistered_class_and_unencodable_values_are_refused() -> None:
    with pytest.raises(CodecError) as info:
        CODEC.encode(object())
    assert info.value.code == "E105 unknown-record-type"
    with pytest.raises(CodecError) as info:
        CODEC.encode(case_created(contact_group=2**40))
    assert info.value.code == "E106 unencodable-record"
    with pytest.raises(CodecError) as info:
        CODEC.encode(case_created(cpr=None))
    assert info.value.code == "E106 unencodable-record"
    assert "0101901234" not in info.value.message


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(AbsenceType)))
def test_enums_are_decoded_as_enum_members(kind: AbsenceType) -> None:
    from processors.events import AbsenceRegistered
    event = AbsenceRegistered(event_id="e", occurred_at=AT, producer="p", cpr="0101901234", absence_id="a",
                              absence_type=kind, start_date=date(2024, 1, 1))
    decoded = CODEC.decode(CODEC.encode(event))
    assert isinstance(decoded, AbsenceRegistered) and decoded.absence_type is kind
