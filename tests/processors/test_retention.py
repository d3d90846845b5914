from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from processors.deceased import delete_areas
from processors.events import DeadlineDue, ReferralRecordEnded, ScreeningResultMade
from processors.model import CitizenState, Deadline, DeletionRequested, Notice, Rejected
from processors.retention import (
    ARCHIVE,
    DEADLINE_HANDLERS,
    HANDLERS,
    POLICIES,
    STATISTICS,
    Period,
    fire_retention,
    on_referral_record_ended,
    on_screening_result_made,
    policy_for_rule,
    visible_to_citizen,
)
from processors.routing import recipients
from processors.state_codec import state_from_dict, state_to_dict

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
KEY = "citizen-key-1"


def _state() -> CitizenState:
    return CitizenState(citizen_key=KEY)


def _referral(record_id: str = "ref-1", ended: date = date(2022, 3, 15)) -> ReferralRecordEnded:
    return ReferralRecordEnded(
        event_id=f"ev-{record_id}",
        occurred_at=NOW,
        producer="jobcenter:101",
        cpr="0101901234",
        record_id=record_id,
        ended_date=ended,
    )


def _screening(result_id: str = "scr-1", made: date = date(2023, 8, 31)) -> ScreeningResultMade:
    return ScreeningResultMade(
        event_id=f"ev-{result_id}",
        occurred_at=NOW,
        producer="jobcenter:101",
        cpr="0101901234",
        result_id=result_id,
        made_date=made,
        score=3,
    )


def _due(deadline: Deadline) -> DeadlineDue:
    return DeadlineDue(
        event_id=f"due-{deadline.deadline_id}",
        occurred_at=NOW,
        producer="deadlines",
        deadline_id=deadline.deadline_id,
        rule=deadline.rule,
        due_date=deadline.due_date,
        case_id=deadline.case_id,
    )


# ---- one test per policy row (R8.3) ----


def test_r8_1_policy_referral_records_deleted_two_years_after_end_without_archive() -> None:
    row = POLICIES["REFERRAL_RECORD"]
    assert (row.rule, row.clock, row.retention) == ("R8.1", "ended_date", Period(years=2))
    assert row.archive is False and row.destination is None


def test_r8_2_policy_screening_results_six_months_then_statistics() -> None:
    row = POLICIES["SCREENING_RESULT"]
    assert (row.rule, row.clock, row.retention) == ("R8.2", "made_date", Period(months=6))
    assert row.citizen_visible == Period(days=90)
    assert row.archive is False and row.destination == STATISTICS


@pytest.mark.parametrize("area", ["CV", "INTEGRATION_CONTRACT", "OTHER_INFORMATION", "ATTACHMENTS"])
def test_r9_1_policy_programme_case_areas_archived_to_rigsarkivet(area: str) -> None:
    row = POLICIES[f"PROGRAMME_CASE:{area}"]
    assert row.archive is True and row.destination == ARCHIVE and row.rule == "R9.1"


def test_r9_2_policy_non_archived_cases_go_nowhere() -> None:
    row = POLICIES["NON_ARCHIVED_CASE"]
    assert row.archive is False and row.destination is None


def test_r10_policy_registration_data_has_no_archive_obligation() -> None:
    row = POLICIES["REGISTRATION"]
    assert row.archive is False and row.destination is None


def test_r8_3_policy_absences_no_archive_assumption() -> None:
    row = POLICIES["ABSENCES"]
    assert row.archive is False and "assumption" in row.note


def test_r8_3_archive_flag_and_destination_agree_in_every_row() -> None:
    for row in POLICIES.values():
        assert row.archive == (row.destination == ARCHIVE), row.kind


def test_r8_3_policy_for_rule_finds_record_policies() -> None:
    assert policy_for_rule("R8.1").kind == "REFERRAL_RECORD"
    assert policy_for_rule("R8.2").kind == "SCREENING_RESULT"
    with pytest.raises(KeyError):
        policy_for_rule("R9.1")  # no clock-driven deletion for case areas


def test_r8_period_arithmetic_clamps_to_month_end() -> None:
    assert Period(years=2).after(date(2020, 2, 29)) == date(2022, 2, 28)
    assert Period(months=6).after(date(2023, 8, 31)) == date(2024, 2, 29)
    assert Period(days=90).after(date(2024, 1, 1)) == date(2024, 3, 31)


def test_r8_2_citizen_sees_result_for_90_days() -> None:
    made = date(2024, 1, 1)
    assert visible_to_citizen("SCREENING_RESULT", made, date(2024, 3, 31))
    assert not visible_to_citizen("SCREENING_RESULT", made, date(2024, 4, 1))
    assert visible_to_citizen("REFERRAL_RECORD", made, date(2030, 1, 1))


# ---- handlers ----


def test_r8_1_referral_record_ended_sets_deadline_two_years_later() -> None:
    d = on_referral_record_ended(_state(), _referral(), NOW)
    assert d.set_deadlines == (Deadline("R8.1", date(2024, 3, 15), case_id="ref-1"),)
    assert d.state.records["ref-1"] == ("REFERRAL_RECORD", date(2022, 3, 15))
    assert d.outputs == ()


def test_r8_1_replay_of_referral_event_changes_nothing() -> None:
    first = on_referral_record_ended(_state(), _referral(), NOW)
    again = on_referral_record_ended(first.state, _referral(), NOW)
    assert again.state == first.state and again.set_deadlines == () and again.outputs == ()


def test_r8_1_fired_deadline_requests_deletion_without_archive_and_forgets_record() -> None:
    set_ = on_referral_record_ended(_state(), _referral(), NOW)
    fired = fire_retention(set_.state, _due(set_.set_deadlines[0]), NOW)
    assert len(fired.outputs) == 1
    out = fired.outputs[0]
    assert isinstance(out, DeletionRequested)
    assert (out.rule, out.scope, out.archive) == ("R8.1", "ref-1", False)
    assert "ref-1" not in fired.state.records and not fired.state.pending


def test_r8_1_fired_deadline_twice_acts_once() -> None:
    set_ = on_referral_record_ended(_state(), _referral(), NOW)
    due = _due(set_.set_deadlines[0])
    fired = fire_retention(set_.state, due, NOW)
    again = fire_retention(fired.state, due, NOW)
    assert again.outputs == () and again.state == fired.state
    # A replay of the original event after deletion does not bring the record back.
    replayed = on_referral_record_ended(fired.state, _referral(), NOW)
    assert replayed.state.records == {} and replayed.set_deadlines == ()


def test_r8_2_screening_deadline_is_six_months_after_made_date() -> None:
    d = on_screening_result_made(_state(), _screening(), NOW)
    assert d.set_deadlines == (Deadline("R8.2", date(2024, 2, 29), case_id="scr-1"),)


def test_r8_2_fired_screening_goes_to_statistics_before_deletion() -> None:
    set_ = on_screening_result_made(_state(), _screening(), NOW)
    fired = fire_retention(set_.state, _due(set_.set_deadlines[0]), NOW)
    notice, deletion = fired.outputs
    assert isinstance(notice, Notice) and notice.kind == "screening-result-for-statistics"
    assert notice.details["record_id"] == "scr-1"
    assert isinstance(deletion, DeletionRequested)
    assert (deletion.rule, deletion.scope, deletion.archive) == ("R8.2", "scr-1", False)
    assert fired.state.records == {}
    # Same cause, same ids: a replay downstream is recognisable.
    refired = fire_retention(set_.state, _due(set_.set_deadlines[0]), NOW)
    assert refired.outputs == fired.outputs


def test_r8_two_records_have_independent_deadlines() -> None:
    a = on_referral_record_ended(_state(), _referral("ref-1"), NOW)
    b = on_referral_record_ended(a.state, _referral("ref-2", date(2022, 6, 1)), NOW)
    assert len(b.state.pending) == 2
    fired = fire_retention(b.state, _due(a.set_deadlines[0]), NOW)
    assert set(fired.state.records) == {"ref-2"} and len(fired.state.pending) == 1


def test_r7_record_for_deceased_citizen_is_rejected() -> None:
    dead = CitizenState(citizen_key=KEY, deceased_on=date(2023, 1, 1))
    d = on_referral_record_ended(dead, _referral(), NOW)
    assert d.state.records == {} and d.set_deadlines == ()
    assert isinstance(d.outputs[0], Rejected) and d.outputs[0].code == "E301 citizen-deceased"


def test_r8_fired_deadline_for_record_already_gone_does_nothing() -> None:
    deadline = Deadline("R8.1", date(2024, 3, 15), case_id="ref-1")
    d = fire_retention(_state(), _due(deadline), NOW)
    assert d.outputs == () and d.state == _state()


def test_r8_handler_tables_cover_both_rules() -> None:
    assert set(HANDLERS) == {ReferralRecordEnded, ScreeningResultMade}
    assert set(DEADLINE_HANDLERS) == {"R8.1", "R8.2"}


def test_r8_2_statistics_receive_the_screening_result_itself_and_nothing_of_it_stays() -> None:
    made = on_screening_result_made(_state(), _screening(), NOW)
    assert made.state.record_details["scr-1"] == {"score": "3"}  # kept while the caseworker may use it
    # The state survives the stored form (the worker writes it between the two events).
    kept = state_from_dict(state_to_dict(made.state))
    fired = fire_retention(kept, _due(made.set_deadlines[0]), NOW)
    notice = fired.outputs[0]
    assert isinstance(notice, Notice) and notice.kind == "screening-result-for-statistics"
    # The result is sealed for statistics with the CPR (notice.personal), never in clear details.
    assert (notice.personal["score"], notice.details["clock_start"]) == ("3", "2023-08-31")
    assert recipients(notice, fired.state) == ("statistics:star",)
    assert fired.state.record_details == {} and fired.state.records == {}
    # The 90-day citizen view is a policy query for whoever shows results to citizens, not a
    # deadline here: from day 91 the citizen may no longer see it, while the caseworker's record
    # is kept, and the only deadline is the 6 months (R8.2).
    start = made.state.records["scr-1"][1]
    assert visible_to_citizen("SCREENING_RESULT", start, Period(days=90).after(start))
    assert not visible_to_citizen("SCREENING_RESULT", start, Period(days=91).after(start))
    assert [d.due_date for d in made.set_deadlines] == [Period(months=6).after(start)]
    assert POLICIES["SCREENING_RESULT"].delivered_fields == ("score",)


def test_r8_2_a_deleted_screening_record_leaves_no_result_behind() -> None:
    made = on_screening_result_made(_state(), _screening(), NOW)
    gone = delete_areas(made.state, ("record/scr-1",))
    assert gone.records == {} and gone.record_details == {}


def test_r8_2_a_screening_published_without_a_score_delivers_no_score() -> None:
    # A missing result must not reach statistics looking like a real one ("0").
    unscored = ScreeningResultMade(event_id="ev-scr-2", occurred_at=NOW, producer="jobcenter:101", cpr="0101901234",
                                   result_id="scr-2", made_date=date(2023, 8, 31))
    assert unscored.score is None
    made = on_screening_result_made(_state(), unscored, NOW)
    fired = fire_retention(made.state, _due(made.set_deadlines[0]), NOW)
    notice = fired.outputs[0]
    assert isinstance(notice, Notice) and notice.kind == "screening-result-for-statistics"
    assert "score" not in notice.details and "score" not in notice.personal
    assert notice.details["record_id"] == "scr-2"


def test_r8_2_the_score_travels_in_the_sealed_personal_part_never_in_clear_details() -> None:
    made = on_screening_result_made(_state(), _screening(), NOW)
    fired = fire_retention(made.state, _due(made.set_deadlines[0]), NOW)
    notice = fired.outputs[0]
    assert isinstance(notice, Notice)
    assert notice.personal == {"score": "3"}
    assert "score" not in notice.details and "3" not in notice.details.values()
