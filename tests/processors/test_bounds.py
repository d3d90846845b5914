"""Bounds at the door (processors.bounds): no field of an event can grow a citizen's state without limit,
and no date outside a plausible window reaches a rule."""

from __future__ import annotations

import dataclasses
import random
import typing
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors import bounds
from processors.events import (
    EVENT_TYPES,
    AbsenceDeleted,
    AbsenceRegistered,
    AbsenceType,
    CaseCreated,
    CitizenDeceased,
    ContractConcluded,
    DataArea,
    DataAreaFetchRequested,
    DeadlineDue,
    Event,
    FollowUpHeld,
    HandoverDatePassed,
    JobseekerDeregistered,
    JobseekerRegistered,
    ReferralRecordEnded,
    ScreeningResultMade,
)
from processors.reference import (
    E206_CITIZEN_UNDER_15,
    E211_VALUE_TOO_LONG,
    E212_DATE_OUT_OF_RANGE,
    E213_CREATED_BEFORE_BIRTH,
    ERROR_CODES,
)
from processors.validation import Violation, validate
from tests.synthetic import synthetic_cpr

TODAY = date(2024, 6, 1)
AT = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
LOCAL = ZoneInfo("Europe/Copenhagen")
CPR = "0101901234"  # synthetic
BIG = 120_000  # characters: a 120 kB value
_COMMON: dict[str, Any] = {"event_id": "4f1c2a7e-0d7b-4c55-9a0e-2b1f3c4d5e6f", "occurred_at": AT, "producer": "p",
                           "cpr": CPR}

# One valid event of every ingress type, every optional field filled, so every field is exercised.
VALID: tuple[Event, ...] = (
    CaseCreated(**_COMMON, case_id="case-1", receiving_municipality="101", jobcenter_municipality="147",
                contact_group=18, handover_date=date(2024, 7, 1), early_cv_takeover_date=date(2024, 6, 20),
                early_contract_takeover_date=date(2024, 6, 25), cv_update_deadline=date(2024, 8, 1),
                cv_number="CV-1", case_type="INTEGRATION_PROGRAMME"),
    HandoverDatePassed(**_COMMON, case_id="case-1", handover_date=date(2024, 5, 1), receiving_municipality="101"),
    AbsenceRegistered(**_COMMON, absence_id="abs-1", absence_type=AbsenceType.HOLIDAY, start_date=date(2024, 6, 10),
                      end_date=date(2024, 6, 20), registered_by="jobcenter:101"),
    AbsenceDeleted(**_COMMON, absence_id="abs-1", absence_type=AbsenceType.HOLIDAY, start_date=date(2024, 6, 10),
                   end_date=date(2024, 6, 20), deleted_by="akasse:12", akasse="12", municipality="101"),
    CitizenDeceased(**_COMMON, date_of_death=date(2024, 5, 1)),
    JobseekerRegistered(**_COMMON, name="Amina Hansen", registration_date=TODAY, municipality="101",
                        benefit_category="dagpenge", unemployment_degree=1.0, job_titles=("Kok", "Tømrer"),
                        akasse="12"),
    JobseekerDeregistered(**_COMMON, deregistration_date=TODAY, reason="Started work"),
    ContractConcluded(**_COMMON, case_id="case-1", concluded_date=TODAY, employment_goal="Kok",
                      education_goal="AMU"),
    FollowUpHeld(**_COMMON, case_id="case-1", held_date=TODAY),
    DataAreaFetchRequested(**_COMMON, case_id="case-1", data_area=DataArea.CV, requested_by="jobcenter:101"),
    ReferralRecordEnded(**_COMMON, record_id="ref-1", ended_date=date(2023, 1, 1)),
    ScreeningResultMade(**_COMMON, result_id="scr-1", made_date=date(2024, 1, 1)),
)


def _fields_of_type(cls: type[Event], kind: type) -> list[str]:
    """Fields of ``cls`` whose annotation is ``kind`` or an optional/tuple of it (not a subclass such as an enum)."""
    out = []
    for name, hint in typing.get_type_hints(cls).items():
        if hint is kind or kind in typing.get_args(hint):
            out.append(name)
    return out


STRING_FIELDS = [(e, f) for e in VALID for f in _fields_of_type(type(e), str)]
DATE_FIELDS = [(e, f) for e in VALID for f in _fields_of_type(type(e), date)]


def codes(found: tuple[Violation, ...]) -> list[tuple[str, str]]:
    return [(v.code, v.field) for v in found]


def case(**changes: Any) -> CaseCreated:
    assert isinstance(VALID[0], CaseCreated)
    return dataclasses.replace(VALID[0], **changes)


def test_bounds_every_ingress_event_type_is_covered_and_valid() -> None:
    assert {type(e) for e in VALID} == set(EVENT_TYPES)
    for event in VALID:
        assert validate(event, TODAY) == (), type(event).__name__
    assert E211_VALUE_TOO_LONG in ERROR_CODES and E212_DATE_OUT_OF_RANGE in ERROR_CODES


def test_bounds_case_id_of_120_kb_is_refused_with_e211() -> None:
    found = validate(case(case_id="c" * BIG), TODAY)
    assert codes(found) == [(E211_VALUE_TOO_LONG, "case_id")]
    assert f"{bounds.MAX_ID_LENGTH:,} characters" in found[0].message and "ccc" not in found[0].message


@pytest.mark.parametrize(("event", "name"), STRING_FIELDS,
                         ids=[f"{type(e).__name__}.{f}" for e, f in STRING_FIELDS])
def test_bounds_every_string_field_of_every_ingress_event_is_bounded(event: Event, name: str) -> None:
    value: object = ("x" * BIG,) if name == "job_titles" else "7" * BIG
    found = validate(dataclasses.replace(event, **{name: value}), TODAY)  # type: ignore[arg-type]
    assert codes(found) == [(E211_VALUE_TOO_LONG, name)]  # and nothing else about that field


@pytest.mark.parametrize(("event", "name"), DATE_FIELDS,
                         ids=[f"{type(e).__name__}.{f}" for e, f in DATE_FIELDS])
@pytest.mark.parametrize("year", [1, 1900, 9999])
def test_bounds_every_date_field_of_every_ingress_event_is_windowed(event: Event, name: str, year: int) -> None:
    found = validate(dataclasses.replace(event, **{name: date(year, 11, 1)}), TODAY)  # type: ignore[arg-type]
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, name)]


def test_bounds_handover_date_in_year_9999_is_refused() -> None:
    found = validate(case(handover_date=date(9999, 11, 1), early_cv_takeover_date=None,
                          early_contract_takeover_date=None, cv_update_deadline=None), TODAY)
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "handover_date")]
    assert "2000-01-01 to 2034-06-01" in found[0].message and "9999" not in found[0].message


def test_bounds_handover_date_in_year_1_and_1900_are_refused() -> None:
    for year in (1, 1900):
        found = validate(case(handover_date=date(year, 7, 1)), TODAY)
        # Only the window: the early takeover dates are not reported as "after the handover date".
        assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "handover_date")], year


def test_bounds_occurred_at_in_year_1_names_the_date_window_not_age() -> None:
    found = validate(case(occurred_at=datetime(1, 1, 1, tzinfo=UTC)), TODAY)
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "occurred_at")]  # not E206 citizen-under-15
    assert "publisher's clock" in found[0].message


def test_bounds_occurred_at_more_than_a_day_after_today_is_refused() -> None:
    last = datetime.combine(TODAY + timedelta(days=1), datetime.max.time(), LOCAL)  # 23:59:59 tomorrow, local
    assert validate(case(occurred_at=last), TODAY) == ()
    found = validate(case(occurred_at=last + timedelta(microseconds=1)), TODAY)
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "occurred_at")]
    naive = datetime(2024, 6, 2, 22, 30)  # naive = UTC: 00:30 on 3 June in Copenhagen
    assert codes(validate(case(occurred_at=naive), TODAY)) == [(E212_DATE_OUT_OF_RANGE, "occurred_at")]


def test_bounds_values_at_exactly_the_bound_pass_and_one_more_is_refused() -> None:
    assert validate(case(case_id="c" * bounds.MAX_ID_LENGTH), TODAY) == ()
    assert codes(validate(case(case_id="c" * (bounds.MAX_ID_LENGTH + 1)), TODAY)) == [
        (E211_VALUE_TOO_LONG, "case_id")]
    registered = VALID[5]
    assert isinstance(registered, JobseekerRegistered)
    at_bound = dataclasses.replace(registered, name="n" * bounds.MAX_TEXT_LENGTH,
                                   job_titles=("t" * bounds.MAX_TEXT_LENGTH,) * bounds.MAX_LIST_ITEMS)
    assert validate(at_bound, TODAY) == ()
    long_name = dataclasses.replace(at_bound, name="n" * (bounds.MAX_TEXT_LENGTH + 1))
    assert codes(validate(long_name, TODAY)) == [(E211_VALUE_TOO_LONG, "name")]
    many = dataclasses.replace(at_bound, job_titles=("Kok",) * (bounds.MAX_LIST_ITEMS + 1))
    assert codes(validate(many, TODAY)) == [(E211_VALUE_TOO_LONG, "job_titles")]
    long_item = dataclasses.replace(at_bound, job_titles=("Kok", "t" * (bounds.MAX_TEXT_LENGTH + 1)))
    assert codes(validate(long_item, TODAY)) == [(E211_VALUE_TOO_LONG, "job_titles")]


def test_bounds_dates_at_exactly_the_window_edges_pass() -> None:
    first, last = bounds.fact_date_window(TODAY)
    assert (first, last) == (date(2000, 1, 1), date(2034, 6, 1))
    handover_only = {"early_cv_takeover_date": None, "early_contract_takeover_date": None, "cv_update_deadline": None}
    for ok in (first, last):
        assert validate(case(handover_date=ok, **handover_only), TODAY) == ()
    for bad in (first - timedelta(1), last + timedelta(1)):
        assert codes(validate(case(handover_date=bad, **handover_only), TODAY)) == [
            (E212_DATE_OUT_OF_RANGE, "handover_date")]
    born_1960 = "0101601234"  # 40 in 2000: R1.5 has nothing to say
    assert validate(case(cpr=born_1960, occurred_at=datetime(2000, 1, 1, tzinfo=LOCAL)), TODAY) == ()
    assert codes(validate(case(cpr=born_1960, occurred_at=datetime(1999, 12, 31, 23, 59, tzinfo=LOCAL)), TODAY)) == [
        (E212_DATE_OUT_OF_RANGE, "occurred_at")]


def test_bounds_window_moves_with_today_and_never_overflows() -> None:
    assert bounds.fact_date_window(date(2030, 1, 15))[1] == date(2040, 1, 15)
    assert bounds.fact_date_window(date(2024, 2, 29))[1] == date(2034, 2, 28)
    assert bounds.occurred_at_window(date(2030, 1, 15))[1] == date(2030, 1, 16)
    for today in (date.min, date(9995, 6, 1), date.max):
        assert bounds.fact_date_window(today)[1] >= today or today < bounds.EARLIEST_PLAUSIBLE_DATE
        assert bounds.occurred_at_window(today)[1] >= today
        for event in VALID:
            assert all(v.code.startswith("E2") for v in validate(event, today))


def test_bounds_open_end_sent_as_9999_12_31_is_refused_with_a_hint_to_send_null() -> None:
    absence = VALID[2]
    assert isinstance(absence, AbsenceRegistered)
    found = validate(dataclasses.replace(absence, end_date=date(9999, 12, 31)), TODAY)
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "end_date")] and "send null" in found[0].message


def test_bounds_messages_never_echo_the_value() -> None:
    cprs = CPR * (bounds.MAX_TEXT_LENGTH // len(CPR) + 1)  # a CPR in a free-text field, over the bound
    registered = VALID[5]
    assert isinstance(registered, JobseekerRegistered)
    found = validate(dataclasses.replace(registered, name=cprs, cpr=cprs, producer=cprs), TODAY)
    assert codes(found) == [(E211_VALUE_TOO_LONG, "producer"), (E211_VALUE_TOO_LONG, "cpr"),
                            (E211_VALUE_TOO_LONG, "name")]
    assert all(CPR not in v.message for v in found)


def test_bounds_an_internal_deadline_id_may_carry_a_rule_and_a_date_around_a_full_length_id() -> None:
    longest = f"R2.1:INTEGRATION_CONTRACT|{'c' * bounds.MAX_ID_LENGTH}|2024-07-01"
    due = DeadlineDue(event_id=_COMMON["event_id"], occurred_at=AT, producer="deadlines", deadline_id=longest,
                      rule="R2.1:INTEGRATION_CONTRACT", due_date=date(2024, 7, 1), case_id="c" * bounds.MAX_ID_LENGTH)
    assert validate(due, TODAY) == ()
    assert codes(validate(dataclasses.replace(due, deadline_id="d" * BIG), TODAY)) == [
        (E211_VALUE_TOO_LONG, "deadline_id")]


def test_r1_3_handover_dates_0001_and_1900_are_refused_naming_a_default_not_an_open_end() -> None:
    for year in (1, 1900):
        [found] = validate(case(handover_date=date(year, 1, 1)), TODAY)
        assert (found.code, found.field) == (E212_DATE_OUT_OF_RANGE, "handover_date"), year
        assert "before the plausible window" in found.message and bounds.FAULT_TOO_EARLY in found.message
        assert "open end" not in found.message  # that hint belongs to a far-future date
    [late] = validate(case(handover_date=date(9999, 12, 31), early_cv_takeover_date=None,
                           early_contract_takeover_date=None, cv_update_deadline=None), TODAY)
    assert "after the plausible window" in late.message and "open end send null" in late.message


def test_r1_5_occurred_at_in_year_1_is_refused_as_an_unset_timestamp_not_under_15() -> None:
    found = validate(case(occurred_at=datetime(1, 1, 1, tzinfo=UTC)), TODAY)
    assert codes(found) == [(E212_DATE_OUT_OF_RANGE, "occurred_at")]
    assert bounds.FAULT_OCCURRED_AT_TOO_EARLY in found[0].message and "15" not in found[0].message
    ahead = validate(case(occurred_at=datetime(2030, 1, 1, tzinfo=UTC)), TODAY)
    assert bounds.FAULT_OCCURRED_AT_TOO_LATE in ahead[0].message


def test_r1_5_case_created_before_the_citizens_birth_names_that_fault_not_under_15() -> None:
    born_2020 = synthetic_cpr(random.Random(14), date(2020, 1, 1), date(2020, 12, 31))
    created_2010 = datetime(2010, 5, 1, 9, tzinfo=UTC)  # inside the window, before the birth
    found = validate(case(cpr=born_2020, occurred_at=created_2010), TODAY)
    assert codes(found) == [(E213_CREATED_BEFORE_BIRTH, "occurred_at")]
    assert born_2020 not in found[0].message and "birth date" in found[0].message
    # Born and 14 on the creation date: that is the age rule, as before.
    assert codes(validate(case(cpr=born_2020, occurred_at=datetime(2034, 5, 1, tzinfo=UTC)), date(2034, 5, 1))) == [
        (E206_CITIZEN_UNDER_15, "cpr")]
