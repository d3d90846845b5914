"""Stateless validation: one test per rule, named after it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from processors.events import (
    AbsenceDeleted,
    AbsenceRegistered,
    AbsenceType,
    CaseCreated,
    CitizenDeceased,
    DeadlineDue,
    HandoverDatePassed,
    JobseekerRegistered,
)
from processors.reference import ERROR_CODES, MUNICIPALITIES
from processors.validation import Violation, cpr_birth_date, is_valid_cpr, validate

TODAY = date(2024, 6, 1)
AT = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
ID = "4f1c2a7e-0d7b-4c55-9a0e-2b1f3c4d5e6f"
CPR = "0101901234"  # synthetic


def case(**changes: Any) -> CaseCreated:
    base = CaseCreated(event_id=ID, occurred_at=AT, producer="asylum-operator", cpr=CPR, case_id="case-1",
                       receiving_municipality="101", jobcenter_municipality="147", contact_group=18,
                       handover_date=date(2024, 7, 1))
    return dataclasses.replace(base, **changes)


def absence(**changes: Any) -> AbsenceRegistered:
    base = AbsenceRegistered(event_id=ID, occurred_at=AT, producer="jobnet", cpr=CPR, absence_id="abs-1",
                             absence_type=AbsenceType.HOLIDAY, start_date=date(2024, 6, 10))
    return dataclasses.replace(base, **changes)


def codes(found: tuple[Violation, ...]) -> list[str]:
    return [v.code for v in found]


def test_valid_events_have_no_violations() -> None:
    assert validate(case(), TODAY) == ()
    assert validate(absence(), TODAY) == ()
    assert validate(CitizenDeceased(event_id=ID, occurred_at=AT, producer="cpr", cpr=CPR,
                                    date_of_death=date(2024, 5, 1)), TODAY) == ()
    assert validate(DeadlineDue(event_id=ID, occurred_at=AT, producer="deadlines", deadline_id="R3.1||2024-07-01",
                                rule="R3.1", due_date=date(2024, 7, 1)), TODAY) == ()


@pytest.mark.parametrize(("cpr", "born"), [
    ("0101901234", date(1990, 1, 1)),   # 7th digit 0-3: 19YY
    ("3112993999", date(1999, 12, 31)),
    ("0101364000", date(2036, 1, 1)),   # 4: 20YY when YY <= 36
    ("0101374000", date(1937, 1, 1)),   # 4: 19YY when YY > 36
    ("0101369000", date(2036, 1, 1)),   # 9 behaves like 4
    ("0101379000", date(1937, 1, 1)),
    ("0101575000", date(2057, 1, 1)),   # 5-8: 20YY when YY <= 57
    ("0101588000", date(1858, 1, 1)),   # 5-8: 18YY when YY > 57
    ("2902005000", date(2000, 2, 29)),  # leap day in a leap year
])
def test_cpr_century_rule_gives_the_birth_date(cpr: str, born: date) -> None:
    assert cpr_birth_date(cpr) == born and is_valid_cpr(cpr)


@pytest.mark.parametrize("cpr", ["", "010190123", "01019012345", "010190-1234", "0101901a34", "3201901234",
                                 "0013901234", "2902014000", "2902971000", "١١٠١٩٠١٢٣٤"])
def test_cpr_century_rule_rejects_what_is_not_a_real_date(cpr: str) -> None:
    assert not is_valid_cpr(cpr)
    found = validate(dataclasses.replace(case(), cpr=cpr), TODAY)
    assert "E201 invalid-cpr" in codes(found)
    assert all(cpr not in v.message for v in found if cpr)


def test_cpr_century_rule_does_not_apply_modulus_11() -> None:
    # The synthetic 0101901234 fails the old modulus-11 check; it must still be valid.
    weights = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
    assert sum(int(d) * w for d, w in zip(CPR, weights, strict=True)) % 11 != 0
    assert is_valid_cpr(CPR)


def test_cpr_century_rule_rejects_a_birth_date_in_the_future() -> None:
    assert "E201 invalid-cpr" in codes(validate(case(cpr="0101304000"), TODAY))  # 2030


@pytest.mark.parametrize("group", [17, 18, 19, 20, 27])
def test_r1_2_allowed_contact_groups(group: int) -> None:
    assert validate(case(contact_group=group), TODAY) == ()


@pytest.mark.parametrize("group", [0, 16, 21, 26, 28, -18])
def test_r1_2_other_contact_groups_are_rejected(group: int) -> None:
    found = validate(case(contact_group=group), TODAY)
    assert codes(found) == ["E203 invalid-contact-group"] and found[0].field == "contact_group"


def test_r1_3_early_takeover_dates_may_equal_but_not_exceed_handover() -> None:
    handover = date(2024, 7, 1)
    assert validate(case(early_cv_takeover_date=handover, early_contract_takeover_date=handover - timedelta(5)),
                    TODAY) == ()
    found = validate(case(early_cv_takeover_date=handover + timedelta(1),
                          early_contract_takeover_date=handover + timedelta(1)), TODAY)
    assert codes(found) == ["E204 early-takeover-after-handover"] * 2
    assert {v.field for v in found} == {"early_cv_takeover_date", "early_contract_takeover_date"}


def test_r1_4_cv_update_deadline_at_most_60_days_after_handover() -> None:
    handover = date(2024, 7, 1)
    assert validate(case(cv_update_deadline=handover + timedelta(60)), TODAY) == ()
    found = validate(case(cv_update_deadline=handover + timedelta(61)), TODAY)
    assert codes(found) == ["E205 cv-deadline-too-late"] and "61 days" in found[0].message


def test_r1_4_far_future_dates_do_not_overflow() -> None:
    found = validate(case(handover_date=date.max, cv_update_deadline=date.max), TODAY)
    assert "E205 cv-deadline-too-late" not in codes(found)


def test_r1_5_citizen_under_15_on_creation_date_is_rejected() -> None:
    # Born 2009-06-02: still 14 on 2024-06-01 (Copenhagen date of the event), 15 the next day.
    young = "0206094000"
    found = validate(case(cpr=young), TODAY)
    assert codes(found) == ["E206 citizen-under-15"]
    assert young not in found[0].message
    assert validate(case(cpr=young, occurred_at=datetime(2024, 6, 2, 9, tzinfo=UTC)), date(2024, 6, 2)) == ()


def test_r1_5_creation_date_is_the_copenhagen_date_of_the_event() -> None:
    # 22:30 UTC on 1 June is 00:30 on 2 June in Copenhagen: the birthday has come.
    late = datetime(2024, 6, 1, 22, 30, tzinfo=UTC)
    assert validate(case(cpr="0206094000", occurred_at=late), TODAY) == ()


def test_r1_5_minor_national_support_allows_under_15() -> None:
    assert validate(case(cpr="0101154000", minor_national_support=True), TODAY) == ()


@pytest.mark.parametrize(("kind", "first"), [
    (AbsenceType.LESS_INTENSIVE_EFFORT, date(2021, 3, 15)),
    (AbsenceType.EXEMPT_MINK_EDUCATION, date(2021, 3, 19)),
    (AbsenceType.BEREAVEMENT_LEAVE, date(2021, 1, 1)),
])
def test_r6_4_absence_type_not_before_its_first_use_date(kind: AbsenceType, first: date) -> None:
    assert validate(absence(absence_type=kind, start_date=first), TODAY) == ()
    found = validate(absence(absence_type=kind, start_date=first - timedelta(1)), TODAY)
    assert codes(found) == ["E207 absence-type-not-yet-valid"] and first.isoformat() in found[0].message


def test_r6_4_types_without_a_first_use_date_are_always_allowed() -> None:
    assert validate(absence(absence_type=AbsenceType.PARENTAL_LEAVE, start_date=date(2000, 1, 1)), TODAY) == ()


def test_r6_4_less_intensive_effort_not_for_education_benefit_recipients() -> None:
    found = validate(absence(absence_type=AbsenceType.LESS_INTENSIVE_EFFORT, education_benefit_recipient=True),
                     TODAY)
    assert codes(found) == ["E208 absence-type-not-allowed"]
    assert validate(absence(absence_type=AbsenceType.HOLIDAY, education_benefit_recipient=True), TODAY) == ()


def test_end_date_before_start_date_is_rejected_for_registration_and_deletion() -> None:
    assert codes(validate(absence(end_date=date(2024, 6, 9)), TODAY)) == ["E209 end-before-start"]
    assert validate(absence(end_date=date(2024, 6, 10)), TODAY) == ()
    deleted = AbsenceDeleted(event_id=ID, occurred_at=AT, producer="akasse", cpr=CPR, absence_id="abs-1",
                             absence_type=AbsenceType.SICKNESS, start_date=date(2024, 6, 10),
                             end_date=date(2024, 6, 1))
    assert codes(validate(deleted, TODAY)) == ["E209 end-before-start"]


@pytest.mark.parametrize("event_id", ["", "   ", "not-a-uuid", "4f1c2a7e0d7b4c559a0e2b1f3c4d5e6f", CPR])
def test_event_id_must_be_a_uuid(event_id: str) -> None:
    found = validate(case(event_id=event_id), TODAY)
    assert codes(found) == ["E210 invalid-event-id"] and found[0].field == "event_id"
    assert CPR not in found[0].message


def test_blank_required_ids_are_rejected() -> None:
    found = validate(case(case_id=" "), TODAY)
    assert [(v.code, v.field) for v in found] == [("E210 invalid-event-id", "case_id")]
    assert codes(validate(absence(absence_id=""), TODAY)) == ["E210 invalid-event-id"]


@pytest.mark.parametrize("code", ["101", "147", "411", "860", "999", "", "0101901234"])
def test_municipality_codes_are_the_98_official_ones(code: str) -> None:
    ok = code in {"101", "147", "860"}
    found = validate(case(receiving_municipality=code), TODAY)
    assert codes(found) == ([] if ok else ["E202 invalid-municipality"])
    assert all(code not in v.message for v in found if code)


def test_municipality_list_has_98_codes_without_christianso() -> None:
    assert len(MUNICIPALITIES) == 98 and "411" not in MUNICIPALITIES
    assert MUNICIPALITIES["101"] == "København" and MUNICIPALITIES["860"] == "Hjørring"
    assert all(len(code) == 3 and code.isdigit() for code in MUNICIPALITIES)


def test_municipality_fields_of_other_events_are_checked() -> None:
    passed = HandoverDatePassed(event_id=ID, occurred_at=AT, producer="p", cpr=CPR, case_id="c",
                                handover_date=date(2024, 5, 1), receiving_municipality="411")
    assert codes(validate(passed, TODAY)) == ["E202 invalid-municipality"]
    registered = JobseekerRegistered(event_id=ID, occurred_at=AT, producer="p", cpr=CPR, name="N",
                                     registration_date=TODAY, municipality="000", benefit_category="DP",
                                     unemployment_degree=1.0)
    assert codes(validate(registered, TODAY)) == ["E202 invalid-municipality"]
    deleted = AbsenceDeleted(event_id=ID, occurred_at=AT, producer="p", cpr=CPR, absence_id="a",
                             absence_type=AbsenceType.HOLIDAY, start_date=TODAY)
    assert validate(deleted, TODAY) == ()  # municipality is optional on a deletion
    assert codes(validate(dataclasses.replace(deleted, municipality="12"), TODAY)) == ["E202 invalid-municipality"]


def test_every_violation_code_is_in_the_error_table() -> None:
    broken = case(event_id="x", cpr="0206094000", receiving_municipality="0", contact_group=1,
                  early_cv_takeover_date=date(2025, 1, 1), cv_update_deadline=date(2025, 1, 1))
    found = validate(broken, TODAY)
    assert len(found) == 6
    assert all(v.code in ERROR_CODES for v in found)
    for code in ("E301 citizen-deceased", "E302 unknown-case", "E303 contract-without-goal",
                 "E304 absence-not-deletable", "E305 data-area-closed", "E101 not-single-object"):
        assert code in ERROR_CODES
