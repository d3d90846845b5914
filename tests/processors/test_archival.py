from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import MappingProxyType

import pytest

from dfdg.jsonio import event_from_json
from processors.archival import (
    CASE_TYPES,
    UNTYPED_CASE,
    build_package_content,
    is_archived,
    marking_of,
    package_id_for,
    programme_of,
)
from processors.events import CaseCreated, DataArea
from processors.lifecycle import on_case_created
from processors.model import CaseState, CitizenState, PersonalData
from schemas.catalogue import SCHEMA_DIR

CPR = "0101901234"


def _case(case_id: str = "c1", group: int = 18, case_type: str = "INTEGRATION_PROGRAMME", **kw: object) -> CaseState:
    d = date(2021, 2, 1)
    return CaseState(case_id, "101", "147", group, d, d, d, date(2021, 4, 2), case_type=case_type, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case_type", "programme"),
    [
        ("INTEGRATION_PROGRAMME", "introduction programme"),
        ("SELF_SUPPORT_AND_RETURN_PROGRAMME", "self-support and return programme"),
        ("INTRODUCTION_COURSE", "introduction course"),
    ],
)
def test_r9_1_programme_and_course_cases_are_archived(case_type: str, programme: str) -> None:
    case = _case(case_type=case_type)
    assert is_archived(case)
    assert programme_of(case) == programme


@pytest.mark.parametrize(
    "case_type",
    ["SELF_SUPPORT_AND_RETURN_BENEFIT", "TRANSITION_BENEFIT", "SPECIAL_CASES_HELP", "HOUSING_SUPPORT", "CHILD_BENEFIT"],
)
@pytest.mark.parametrize("group", [17, 18, 19, 20, 27])
def test_r9_2_benefit_payment_cases_are_not_archived_whatever_the_contact_group(case_type: str, group: int) -> None:
    assert not is_archived(_case(group=group, case_type=case_type))


@pytest.mark.parametrize(("group", "archived"), [(17, False), (18, True), (19, True), (20, False), (27, True)])
def test_r9_1_unknown_case_type_falls_back_to_contact_group(group: int, archived: bool) -> None:
    assert is_archived(_case(group=group, case_type="SOMETHING_ELSE")) is archived


@pytest.mark.parametrize("group", [17, 20])
def test_r9_1_assumption_groups_17_and_20_archived_when_case_type_marks_a_programme(group: int) -> None:
    assert is_archived(_case(group=group, case_type="INTRODUCTION_COURSE"))


def test_r9_3_chapters_recorded_as_legal_basis() -> None:
    assert CASE_TYPES["INTRODUCTION_COURSE"].legal_basis.endswith("chapter 4a")
    assert CASE_TYPES["INTEGRATION_PROGRAMME"].legal_basis.endswith("chapter 4")


def test_r7_2_package_id_is_deterministic_and_not_personal() -> None:
    a = package_id_for("key-1", date(2024, 5, 1))
    assert a == package_id_for("key-1", date(2024, 5, 1))
    assert a != package_id_for("key-1", date(2024, 5, 2))
    assert a != package_id_for("key-2", date(2024, 5, 1))
    assert CPR not in a


def test_r9_3_package_holds_only_archived_cases_each_with_case_type_and_programme() -> None:
    state = CitizenState(
        citizen_key="key-1",
        personal=PersonalData(cpr=CPR),
        cases=MappingProxyType(
            {
                "c2": _case("c2", 19, "INTRODUCTION_COURSE", last_follow_up_on=date(2023, 6, 1)),
                "c1": _case("c1", 27, "INTEGRATION_PROGRAMME"),
                "c3": _case("c3", 18, "HOUSING_SUPPORT"),
            }
        ),
    )
    content = build_package_content(state, date(2024, 5, 1))
    assert [c.case_id for c in content.cases] == ["c1", "c2"]
    assert content.case_types == ("INTEGRATION_PROGRAMME", "INTRODUCTION_COURSE")
    assert content.programmes == ("introduction course", "introduction programme")
    assert all(c.case_type and c.programme and c.data_areas == tuple(DataArea) for c in content.cases)
    assert content.period == (date(2021, 2, 1), date(2024, 5, 1))
    assert content.package_id == package_id_for("key-1", date(2024, 5, 1))
    assert content.cpr == CPR


@pytest.mark.parametrize(("group", "archived", "marking"), [
    (17, False, ""), (18, True, "SELF_SUPPORT_AND_RETURN_PROGRAMME"), (19, True, "INTRODUCTION_COURSE"),
    (20, False, ""), (27, True, "INTEGRATION_PROGRAMME"),
])
def test_r9_case_published_without_a_type_is_decided_by_its_contact_group(group: int, archived: bool,
                                                                           marking: str) -> None:
    # A case without case_type, as a publisher sends it (JSON or Avro: the schema default agrees).
    body = {"cpr": CPR, "case_id": "c9", "receiving_municipality": "101", "jobcenter_municipality": "101",
            "contact_group": group, "handover_date": "2026-03-28"}
    event = event_from_json("case-created", body)
    assert isinstance(event, CaseCreated) and event.case_type == UNTYPED_CASE
    avsc = json.loads((SCHEMA_DIR / "CaseCreated.avsc").read_text(encoding="utf-8"))
    assert next(f["default"] for f in avsc["fields"] if f["name"] == "case_type") == UNTYPED_CASE
    state = on_case_created(CitizenState(citizen_key="key-9"), event, datetime(2026, 3, 1, tzinfo=UTC)).state
    case = state.cases["c9"]
    # Groups 17 and 20 imply no programme, so an untyped case there is not archived (R9.1/R9.2).
    assert is_archived(case) is archived
    if archived:  # R9.3: an archived case still carries a marking, the one its group implies
        [packed] = build_package_content(state, date(2026, 5, 1)).cases
        assert packed.case_type == marking == marking_of(case)
