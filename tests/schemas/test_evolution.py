"""Schema evolution: v1 and v2 producers and consumers of one event mix through the catalogue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from processors.events import CitizenDeceased
from schemas.catalogue import SCHEMA_DIR
from schemas.codec import Codec, CodecError

NAME = "dk.dfdg.events.CitizenDeceased"
AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenDeceasedV2:
    """What CitizenDeceased would become in v2: one new optional field."""

    event_id: str
    occurred_at: datetime
    producer: str
    cpr: str
    date_of_death: date
    place_of_death: str | None = None


def _v1() -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / "CitizenDeceased.avsc").read_text(encoding="utf-8")))


def _v2(field: dict[str, Any]) -> dict[str, Any]:
    schema = _v1()
    schema["fields"] = [*schema["fields"], field]
    return schema


def _codec(tmp: Path, current: dict[str, Any], other: dict[str, Any], cls: type) -> Codec:
    (tmp / "versions").mkdir(parents=True)
    (tmp / "CitizenDeceased.avsc").write_text(json.dumps(current))
    (tmp / "versions" / "CitizenDeceased.other.avsc").write_text(json.dumps(other))
    return Codec.from_directory(tmp, {NAME: cls})


OPTIONAL = {"name": "place_of_death", "type": ["null", "string"], "default": None, "doc": "Where, if known."}


def test_v1_bytes_are_read_by_a_v2_reader_and_v2_bytes_by_a_v1_reader(tmp_path: Path) -> None:
    v1_reader = _codec(tmp_path / "v1", _v1(), _v2(OPTIONAL), CitizenDeceased)
    v2_reader = _codec(tmp_path / "v2", _v2(OPTIONAL), _v1(), CitizenDeceasedV2)
    old = CitizenDeceased(event_id="e1", occurred_at=AT, producer="cpr-register", cpr="0101901234",
                          date_of_death=date(2024, 2, 29))
    new = CitizenDeceasedV2(event_id="e2", occurred_at=AT, producer="cpr-register", cpr="0101901234",
                            date_of_death=date(2024, 2, 29), place_of_death="Odense")
    v1_bytes, v2_bytes = v1_reader.encode(old), v2_reader.encode(new)
    assert v1_bytes[2:10] != v2_bytes[2:10]  # different writer fingerprints on the wire
    assert v2_reader.decode(v1_bytes) == CitizenDeceasedV2(
        event_id="e1", occurred_at=AT, producer="cpr-register", cpr="0101901234", date_of_death=date(2024, 2, 29))
    assert v1_reader.decode(v2_bytes) == CitizenDeceased(
        event_id="e2", occurred_at=AT, producer="cpr-register", cpr="0101901234", date_of_death=date(2024, 2, 29))
    # The default codec knows only v1: a v2 writer it was never told about is E102, not garbage.
    with pytest.raises(CodecError) as info:
        Codec.default().decode(v2_bytes)
    assert info.value.code == "E102 unknown-schema"


def test_incompatible_v2_is_unresolvable(tmp_path: Path) -> None:
    required = {"name": "place_of_death", "type": "string", "doc": "Where (required: an incompatible change)."}
    v2_reader = _codec(tmp_path, _v2(required), _v1(), CitizenDeceasedV2)
    v1_bytes = Codec.default().encode(CitizenDeceased(event_id="e", occurred_at=AT, producer="p", cpr="0101901234",
                                                      date_of_death=date(2024, 1, 1)))
    with pytest.raises(CodecError) as info:
        v2_reader.decode(v1_bytes)
    assert info.value.code == "E104 unresolvable-schema"


def test_a_version_without_a_current_schema_is_refused(tmp_path: Path) -> None:
    other = _v1() | {"name": "Stray"}
    with pytest.raises(ValueError, match="no current version"):
        _codec(tmp_path, _v1(), other, CitizenDeceased)


def test_r8_2_a_screening_without_a_score_decodes_as_none_and_old_producers_bytes_still_decode(
        tmp_path: Path) -> None:
    from processors.events import ScreeningResultMade

    # A screening published without a score is no score, not a score of 0.
    unscored = ScreeningResultMade(event_id="e1", occurred_at=AT, producer="jobnet", cpr="0101901234",
                                   result_id="r1", made_date=date(2024, 2, 29))
    decoded = Codec.default().decode(Codec.default().encode(unscored))
    assert isinstance(decoded, ScreeningResultMade) and decoded.score is None
    # A producer still on the old schema (score an int) is read by the current codec unchanged.
    old_schema = json.loads((SCHEMA_DIR / "versions" / "ScreeningResultMade.v1.avsc").read_text(encoding="utf-8"))
    (tmp_path / "versions").mkdir()
    (tmp_path / "ScreeningResultMade.avsc").write_text(json.dumps(old_schema))
    old_writer = Codec.from_directory(tmp_path, {"dk.dfdg.events.ScreeningResultMade": ScreeningResultMade})
    scored = ScreeningResultMade(event_id="e2", occurred_at=AT, producer="jobnet", cpr="0101901234",
                                 result_id="r2", made_date=date(2024, 2, 29), score=42)
    old_bytes = old_writer.encode(scored)
    assert old_bytes[2:10] != Codec.default().encode(scored)[2:10]  # written with the old schema
    assert Codec.default().decode(old_bytes) == scored
