"""R1 case created, R2 data areas, R7.3 no case for a deceased citizen (processors.lifecycle)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from processors.events import DataArea, DataAreaFetchRequested
from processors.model import CitizenState, DataAreaClosedOut, Deadline, FetchRefused, Notice, Rejected
from processors.validation import validate
from tests.processors.lifecycle_driver import (
    CITIZEN_KEY,
    CPR,
    JOBCENTER,
    RECEIVING,
    Run,
    case_created,
    common,
    handle,
    utc,
)

EARLY_CV = date(2026, 3, 10)
EARLY_CONTRACT = date(2026, 3, 20)
HANDOVER = date(2026, 3, 28)


def created_run(**overrides: object) -> Run:
    run = Run()
    run.send(case_created(**overrides))
    return run


def notices(run: Run, kind: str) -> list[Notice]:
    return [o for o in run.outputs if isinstance(o, Notice) and o.kind == kind]


def test_r1_1_case_recorded_and_cpr_kept_only_in_personal() -> None:
    run = created_run()
    case = run.state.cases["case-1"]
    assert (case.receiving_municipality, case.jobcenter_municipality, case.contact_group) == (RECEIVING, JOBCENTER, 18)
    assert run.state.personal.cpr == CPR
    assert run.state.municipality == JOBCENTER
    # The CPR is nowhere but in state.personal: not in outputs, deadlines or ids.
    assert CPR not in repr(run.outputs) + repr(run.state.pending) + repr(run.state.cases)


def test_r1_1_case_created_notice_goes_to_the_jobcentre_municipality() -> None:
    run = Run()
    event = case_created()
    run.send(event)
    [notice] = notices(run, "case-created")
    assert notice.municipality == JOBCENTER
    assert notice.cause_type == "CaseCreated" and notice.cause_event_id == event.event_id
    assert notice.details["case_id"] == "case-1" and notice.details["handover_date"] == "2026-03-28"
    assert notice.details["receiving_municipality"] == RECEIVING


def test_r1_1_known_municipality_is_not_overwritten() -> None:
    run = Run(state=CitizenState(citizen_key=CITIZEN_KEY, municipality="751"))
    run.send(case_created())
    assert run.state.municipality == "751"


def test_r1_1_replayed_creation_is_noop_and_conflicting_one_rejected() -> None:
    run = created_run()
    before = run.state
    again = run.send(case_created())
    assert again.state is before and again.outputs == () and again.set_deadlines == ()
    conflicting = run.send(case_created(handover_date=date(2026, 4, 1)))
    [rejected] = conflicting.outputs
    assert isinstance(rejected, Rejected) and rejected.code.startswith("E306")
    assert conflicting.state is before


def test_r1_3_early_takeover_dates_default_to_handover_date() -> None:
    case = created_run().state.cases["case-1"]
    assert case.cv_takeover_date == case.contract_takeover_date == HANDOVER


def test_r1_3_early_takeover_dates_before_handover_are_kept() -> None:
    run = created_run(early_cv_takeover_date=EARLY_CV, early_contract_takeover_date=EARLY_CONTRACT)
    case = run.state.cases["case-1"]
    assert (case.cv_takeover_date, case.contract_takeover_date) == (EARLY_CV, EARLY_CONTRACT)
    assert case.handover_date == HANDOVER


def test_r1_4_default_cv_deadline_is_60_days_after_early_cv_date() -> None:
    case = created_run(early_cv_takeover_date=EARLY_CV).state.cases["case-1"]
    assert case.cv_update_deadline == date(2026, 5, 9)


def test_r1_4_default_cv_deadline_is_60_days_after_handover_without_early_date() -> None:
    case = created_run().state.cases["case-1"]
    assert case.cv_update_deadline == date(2026, 5, 27)


def test_r1_4_default_cv_deadline_across_leap_day() -> None:
    case = created_run(handover_date=date(2028, 1, 30)).state.cases["case-1"]
    assert case.cv_update_deadline == date(2028, 3, 30)  # 2028 has 29 February


def test_r1_4_given_cv_deadline_is_kept() -> None:
    case = created_run(cv_update_deadline=date(2026, 4, 15)).state.cases["case-1"]
    assert case.cv_update_deadline == date(2026, 4, 15)
    assert Deadline("R4.1", date(2026, 4, 15), "case-1").deadline_id in created_run(
        cv_update_deadline=date(2026, 4, 15)).state.pending


def test_r1_6_jobnet_profile_requested_without_cv_number() -> None:
    run = created_run(cv_number=None)
    [notice] = notices(run, "jobnet-profile-requested")
    assert notice.details["case_id"] == "case-1" and notice.municipality == JOBCENTER


def test_r1_6_no_jobnet_request_with_cv_number() -> None:
    assert notices(created_run(cv_number="CV-77"), "jobnet-profile-requested") == []


def test_r1_7_four_data_areas_fetched_by_cpr_and_receiving_municipality() -> None:
    import json

    from processors.pipeline import process, sealed_fields
    from schemas.catalogue import SCHEMA_DIR

    # The contract a fetcher publishes to names exactly the four areas, in the sources' order.
    schema = json.loads((SCHEMA_DIR / "DataAreaFetchRequested.avsc").read_text(encoding="utf-8"))
    [area_field] = [f for f in schema["fields"] if f["name"] == "data_area"]
    assert area_field["type"]["symbols"] == ["CV", "INTEGRATION_CONTRACT", "OTHER_INFORMATION", "ATTACHMENTS"]

    # The jobcentre that fetches is told the receiving municipality with the case (R1.1); a case
    # without a valid receiving municipality is refused, so there is never a case to fetch for.
    run = created_run(early_cv_takeover_date=EARLY_CV, early_contract_takeover_date=EARLY_CONTRACT)
    [created] = notices(run, "case-created")
    assert created.details["receiving_municipality"] == RECEIVING
    for municipality in ("", "999"):
        assert [v.code for v in validate(case_created(receiving_municipality=municipality), date(2026, 3, 1))] == [
            "E202 invalid-municipality"]
    # ... and the CPR, sealed for that jobcentre alone (the pipeline's notification, R1.1).
    outcome = process(CitizenState(citizen_key=CITIZEN_KEY), case_created(), utc(2026, 3, 1, 9))
    [delivery] = [d for d in outcome.deliveries if d.notice.kind == "case-created"]
    assert delivery.recipient == f"jobcenter:{JOBCENTER}"
    assert sealed_fields(delivery, outcome.state) == {"cpr": CPR}
    # A fetch names the citizen by CPR: without a valid one it is refused before any state.
    bad_cpr = fetch(DataArea.CV, event_id="12345678-1234-4234-8234-123456789012", cpr="3102901234")
    assert [v.code for v in validate(bad_cpr, date(2026, 3, 1))] == ["E201 invalid-cpr"]
    # ... and a case of that citizen: a fetch for a case the citizen does not have is refused.
    [rejected] = run.send(fetch(DataArea.ATTACHMENTS, case_id="case-unknown")).outputs
    assert isinstance(rejected, Rejected) and rejected.code == "E302 unknown-case"

    # Each of the four areas is fetched on its own: open until its own takeover date has passed,
    # then closed and refused by name, each on its own day (R2.1-R2.3).
    for area in DataArea:
        assert run.send(fetch(area)).outputs == ()
    closed: list[DataArea] = []
    for day in (utc(2026, 3, 11), utc(2026, 3, 21), utc(2026, 3, 29)):
        closed += [o.data_area for o in run.advance(day) if isinstance(o, DataAreaClosedOut)]
        for area in DataArea:
            refused = [o for o in run.send(fetch(area)).outputs if isinstance(o, FetchRefused)]
            assert [r.data_area for r in refused] == ([area] if area in closed else []), (day, area)
    assert len(closed) == 4 and set(closed) == set(DataArea)  # each closed once


def test_r2_2_close_deadlines_on_each_areas_takeover_date() -> None:
    run = Run()
    decision = run.send(case_created(early_cv_takeover_date=EARLY_CV, early_contract_takeover_date=EARLY_CONTRACT))
    by_rule = {d.rule: d.due_date for d in decision.set_deadlines}
    assert by_rule["R2.1:CV"] == EARLY_CV
    assert by_rule["R2.1:INTEGRATION_CONTRACT"] == EARLY_CONTRACT
    assert by_rule["R2.1:OTHER_INFORMATION"] == by_rule["R2.1:ATTACHMENTS"] == HANDOVER
    assert by_rule["R3.1"] == HANDOVER and by_rule["R5.1"] == date(2026, 4, 27) and by_rule["R4.1"] == date(2026, 5, 9)
    # Everything set is pending, and nothing else is.
    assert dict(run.state.pending) == {d.deadline_id: d for d in decision.set_deadlines}


def test_r2_1_data_area_closes_when_its_takeover_date_has_passed() -> None:
    run = created_run(early_cv_takeover_date=EARLY_CV)
    # 2026-03-10 is still the local date (CV creation opened at its start, R2.4: not a closing).
    assert [o for o in run.advance(utc(2026, 3, 10, 22, 59, 59)) if isinstance(o, DataAreaClosedOut)] == []
    [closed] = run.advance(utc(2026, 3, 10, 23))  # 00:00 CET on 11 March
    assert isinstance(closed, DataAreaClosedOut)
    assert (closed.data_area, closed.closed_on, closed.case_id) == (DataArea.CV, EARLY_CV, "case-1")
    assert run.state.cases["case-1"].closed_areas == {DataArea.CV}
    # The other three close when the handover date (just before the spring DST switch) has passed.
    assert not [o for o in run.advance(utc(2026, 3, 28, 22, 59)) if isinstance(o, DataAreaClosedOut)]
    later = [o for o in run.advance(utc(2026, 3, 28, 23)) if isinstance(o, DataAreaClosedOut)]
    assert {o.data_area for o in later} == {DataArea.INTEGRATION_CONTRACT, DataArea.OTHER_INFORMATION,
                                            DataArea.ATTACHMENTS}
    assert run.state.cases["case-1"].closed_areas == set(DataArea)


def test_r2_1_closed_out_ids_are_the_same_on_a_replayed_run() -> None:
    first, second = created_run(), created_run()
    first.advance(utc(2026, 3, 29))
    second.advance(utc(2026, 3, 29))
    assert [o.output_id for o in first.outputs if isinstance(o, DataAreaClosedOut)] == [
        o.output_id for o in second.outputs if isinstance(o, DataAreaClosedOut)]
    assert {e.event_id for e in first.fired}.isdisjoint({e.event_id for e in second.fired})
    assert len({o.output_id for o in first.outputs if isinstance(o, DataAreaClosedOut)}) == 4


def fetch(area: DataArea, case_id: str = "case-1", **overrides: str) -> DataAreaFetchRequested:
    return DataAreaFetchRequested(**common(case_id=case_id, **overrides), data_area=area, requested_by="jobcenter:147")


def test_r2_3_fetch_for_closed_area_refused_with_reason() -> None:
    run = created_run(early_cv_takeover_date=EARLY_CV)
    run.advance(utc(2026, 3, 12))
    request = fetch(DataArea.CV)
    [refused] = run.send(request).outputs
    assert isinstance(refused, FetchRefused)
    assert (refused.cause_event_id, refused.data_area, refused.case_id) == (request.event_id, DataArea.CV, "case-1")
    assert refused.reason.startswith("E305")
    for part in ("data area CV", "CV takeover date (early_cv_takeover_date, else handover_date)",
                 "00:00 Europe/Copenhagen the day after", "asylum operator"):
        assert part in refused.reason
    # The reason names the date's field, never its value nor the case's id or the CPR: the
    # record's case_id field and the area's DataAreaClosed record carry those.
    for value in (CPR, "case-1", "2026-03-10", "2026-03-28"):
        assert value not in refused.reason
    # A replay of the same request yields the same output id.
    assert handle(run.state, request, run.now).outputs[0] == refused


def test_r2_3_fetch_for_open_area_gives_nothing() -> None:
    run = created_run(early_cv_takeover_date=EARLY_CV)
    run.advance(utc(2026, 3, 12))
    decision = run.send(fetch(DataArea.OTHER_INFORMATION))  # closes only after the handover date
    assert decision.outputs == () and decision.state is run.state


def test_r2_3_area_past_its_date_is_refused_even_before_the_deadline_fired() -> None:
    run = created_run()
    run.now = utc(2026, 3, 28, 23)  # the clock moved but the deadline service has not fired yet
    assert run.state.cases["case-1"].closed_areas == frozenset()
    [refused] = run.send(fetch(DataArea.ATTACHMENTS)).outputs
    assert isinstance(refused, FetchRefused) and "handover date (handover_date) has passed" in refused.reason
    run.now = utc(2026, 3, 28, 22, 59)
    assert run.send(fetch(DataArea.ATTACHMENTS)).outputs == ()


def test_r2_3_fetch_for_unknown_case_rejected() -> None:
    run = created_run()
    [rejected] = run.send(fetch(DataArea.CV, case_id="case-9")).outputs
    assert isinstance(rejected, Rejected) and rejected.code == "E302 unknown-case"


def test_r2_4_future_early_takeover_dates_open_on_those_dates_not_at_creation() -> None:
    # Created 2026-03-01 with early dates 03-10 and 03-20: nothing opens before those dates.
    run = Run()
    decision = run.send(case_created(early_cv_takeover_date=EARLY_CV, early_contract_takeover_date=EARLY_CONTRACT))
    case = run.state.cases["case-1"]
    assert not case.cv_creation_open and not case.contract_formation_open
    assert notices(run, "cv-creation-open") == notices(run, "contract-formation-open") == []
    opening = {d.rule: d.due_date for d in decision.set_deadlines if d.rule.startswith("R2.4")}
    # Each fires when the day before its early date has passed, i.e. at 00:00 on the early date.
    assert opening == {"R2.4:CV": date(2026, 3, 9), "R2.4:CONTRACT": date(2026, 3, 19)}
    run.advance(utc(2026, 3, 9, 22, 59, 59))  # 23:59:59 on 9 March in Copenhagen
    assert not run.state.cases["case-1"].cv_creation_open
    run.advance(utc(2026, 3, 9, 23))  # 00:00 CET on 10 March: the early CV takeover date
    case = run.state.cases["case-1"]
    assert case.cv_creation_open and not case.contract_formation_open
    run.advance(utc(2026, 3, 19, 23))  # 00:00 CET on 20 March
    assert run.state.cases["case-1"].contract_formation_open
    [cv] = notices(run, "cv-creation-open")
    [contract] = notices(run, "contract-formation-open")
    assert (cv.details["opened_on"], contract.details["opened_on"]) == ("2026-03-10", "2026-03-20")
    assert cv.municipality == contract.municipality == JOBCENTER


def test_r2_4_early_takeover_date_already_reached_opens_at_creation() -> None:
    run = Run(now=utc(2026, 3, 15, 9))  # created on 15 March: the early CV date (10 March) has come
    decision = run.send(case_created(occurred_at=utc(2026, 3, 15, 9), early_cv_takeover_date=EARLY_CV,
                                     early_contract_takeover_date=EARLY_CONTRACT))
    case = run.state.cases["case-1"]
    assert case.cv_creation_open and not case.contract_formation_open
    assert [d.rule for d in decision.set_deadlines if d.rule.startswith("R2.4")] == ["R2.4:CONTRACT"]
    [cv] = notices(run, "cv-creation-open")
    assert cv.details["opened_on"] == "2026-03-10"
    # Opened at creation or by its deadline, the notice is the same fact with the same id.
    later = Run()
    later.send(case_created(early_cv_takeover_date=EARLY_CV))
    later.advance(utc(2026, 3, 9, 23))
    assert notices(later, "cv-creation-open")[0].notice_id == cv.notice_id


def test_r2_4_only_the_area_with_an_early_date_opens_on_it() -> None:
    run = created_run(early_cv_takeover_date=EARLY_CV)
    pending = sorted((d.rule, d.due_date) for d in run.state.pending.values() if d.rule.startswith("R2.4"))
    assert pending == [("R2.4:CONTRACT", HANDOVER), ("R2.4:CV", date(2026, 3, 9))]
    run.advance(utc(2026, 3, 10, 12))
    case = run.state.cases["case-1"]
    assert case.cv_creation_open and not case.contract_formation_open


def test_r2_4_without_early_dates_opens_when_handover_date_has_passed() -> None:
    run = created_run()
    case = run.state.cases["case-1"]
    assert not case.cv_creation_open and not case.contract_formation_open
    assert notices(run, "cv-creation-open") == []
    run.advance(utc(2026, 3, 28, 22, 59))
    assert not run.state.cases["case-1"].cv_creation_open
    run.advance(utc(2026, 3, 28, 23))
    case = run.state.cases["case-1"]
    assert case.cv_creation_open and case.contract_formation_open
    assert notices(run, "cv-creation-open")[0].details["opened_on"] == "2026-03-28"
    assert len(notices(run, "contract-formation-open")) == 1


def test_r7_3_case_for_deceased_rejected() -> None:
    state = CitizenState(citizen_key=CITIZEN_KEY, deceased_on=date(2026, 2, 1))
    decision = handle(state, case_created(), utc(2026, 3, 1))
    [rejected] = decision.outputs
    assert isinstance(rejected, Rejected) and rejected.code == "E301 citizen-deceased"
    assert decision.state is state and decision.set_deadlines == ()


@pytest.mark.parametrize("area", list(DataArea))
def test_r7_3_fetch_for_deceased_citizen_rejected(area: DataArea) -> None:
    run = created_run()
    run.state = replace(run.state, deceased_on=date(2026, 3, 5))
    [rejected] = run.send(fetch(area)).outputs
    assert isinstance(rejected, Rejected) and rejected.code.startswith("E301")
