"""R3 handover, R4 CV responsibility, R5 contract follow-up, and acting once per deadline."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from processors.events import ContractConcluded, DeadlineDue, FollowUpHeld, HandoverDatePassed
from processors.model import Deadline, Notice, Rejected
from tests.processors.lifecycle_driver import (
    CPR,
    JOBCENTER,
    RECEIVING,
    Run,
    case_created,
    common,
    due_event,
    handle,
    new_id,
    utc,
)


def created_run(**overrides: object) -> Run:
    run = Run()
    run.send(case_created(**overrides))
    return run


def notices(run: Run, kind: str) -> list[Notice]:
    return [o for o in run.outputs if isinstance(o, Notice) and o.kind == kind]


def outside_handover(handover: date = date(2026, 3, 28)) -> HandoverDatePassed:
    return HandoverDatePassed(**common(), handover_date=handover, receiving_municipality=RECEIVING)


def concluded(day: date, employment_goal: str | None = "job as electrician", education_goal: str | None = None
              ) -> ContractConcluded:
    return ContractConcluded(**common(), concluded_date=day, employment_goal=employment_goal,
                             education_goal=education_goal)


def follow_up(day: date, goals_met: bool = False) -> FollowUpHeld:
    return FollowUpHeld(**common(), held_date=day, goals_met=goals_met)


def pending_rules(run: Run, rule: str) -> list[date]:
    return sorted(d.due_date for d in run.state.pending.values() if d.rule == rule)


# ---- R3 -------------------------------------------------------------------------------------


def test_r3_1_handover_passed_at_local_midnight_spring_dst() -> None:
    run = created_run(handover_date=date(2026, 3, 28))
    run.advance(utc(2026, 3, 28, 22, 59, 59))
    assert notices(run, "handover-date-passed") == []
    run.advance(utc(2026, 3, 28, 23))  # 2026-03-29 00:00 CET
    [notice] = notices(run, "handover-date-passed")
    assert notice.municipality == RECEIVING
    assert notice.details["handover_date"] == "2026-03-28" and notice.details["case_id"] == "case-1"
    assert notice.cause_type == "DeadlineDue" and notice.cause_event_id == run.fired[-1].event_id
    assert run.state.cases["case-1"].handover_passed


def test_r3_1_handover_passed_at_local_midnight_autumn_dst() -> None:
    run = created_run(handover_date=date(2026, 10, 24), occurred_at=utc(2026, 10, 1))
    run.now = utc(2026, 10, 1)
    run.advance(utc(2026, 10, 24, 21, 59, 59))
    assert notices(run, "handover-date-passed") == []
    run.advance(utc(2026, 10, 24, 22))  # 2026-10-25 00:00 CEST
    assert len(notices(run, "handover-date-passed")) == 1


def test_r3_1_handover_on_leap_day() -> None:
    run = created_run(handover_date=date(2028, 2, 29))
    run.advance(utc(2028, 2, 29, 22, 59))
    assert not run.state.cases["case-1"].handover_passed
    run.advance(utc(2028, 2, 29, 23))  # 2028-03-01 00:00 CET
    assert run.state.cases["case-1"].handover_passed


def test_r3_2_outside_event_first_acts_and_cancels_the_deadline() -> None:
    run = created_run()
    r31 = Deadline("R3.1", date(2026, 3, 28), "case-1").deadline_id
    due = due_event(run.state, r31)  # what the deadline service would send if the cancel came too late
    decision = run.send(outside_handover())
    [notice] = decision.outputs
    assert isinstance(notice, Notice) and notice.kind == "handover-date-passed" and notice.municipality == RECEIVING
    assert notice.cause_type == "HandoverDatePassed"
    assert decision.cancel_deadlines == (r31,) and r31 not in run.state.pending
    late = run.send(due)
    assert late.outputs == () and late.state is decision.state


def test_r3_2_second_is_noop_after_the_deadline() -> None:
    run = created_run()
    run.advance(utc(2026, 3, 29))
    before = run.state
    decision = run.send(outside_handover())
    assert decision.outputs == () and decision.state is before and decision.cancel_deadlines == ()


def test_r3_2_second_outside_event_is_noop() -> None:
    run = created_run()
    run.send(outside_handover())
    before = run.state
    decision = run.send(outside_handover())
    assert decision.outputs == () and decision.state is before


def test_r3_2_both_paths_give_the_same_notice_id() -> None:
    by_deadline, by_event = created_run(), created_run()
    by_deadline.advance(utc(2026, 3, 29))
    by_event.send(outside_handover())
    assert notices(by_deadline, "handover-date-passed")[0].notice_id == notices(by_event, "handover-date-passed")[
        0].notice_id


def test_r3_2_unknown_case_rejected() -> None:
    run = created_run()
    event = HandoverDatePassed(**common(case_id="nope"), handover_date=date(2026, 3, 28),
                               receiving_municipality=RECEIVING)
    [rejected] = run.send(event).outputs
    assert isinstance(rejected, Rejected) and rejected.code == "E302 unknown-case"


# ---- R4 -------------------------------------------------------------------------------------


def test_r4_1_cv_responsibility_moves_when_cv_update_deadline_passed() -> None:
    run = created_run(early_cv_takeover_date=date(2026, 3, 10))  # default deadline 2026-05-09 (CEST)
    run.advance(utc(2026, 5, 9, 21, 59))
    assert not run.state.cases["case-1"].cv_responsibility_with_citizen
    run.advance(utc(2026, 5, 9, 22))
    assert run.state.cases["case-1"].cv_responsibility_with_citizen
    [notice] = notices(run, "cv-responsibility-moved")
    assert notice.municipality == JOBCENTER
    assert notice.details["task"] == "issue-jobnet-login-codes"
    assert notice.details["cv_update_deadline"] == "2026-05-09"


# ---- R5 -------------------------------------------------------------------------------------


def test_r5_1_contract_overdue_30_days_after_handover() -> None:
    run = created_run()
    run.advance(utc(2026, 4, 27, 21, 59))
    assert notices(run, "contract-overdue") == []
    run.advance(utc(2026, 4, 27, 22))  # 2026-04-28 00:00 CEST: 30 days after 2026-03-28 have passed
    [notice] = notices(run, "contract-overdue")
    assert notice.municipality == JOBCENTER and notice.details["contract_due_date"] == "2026-04-27"


def test_r5_1_contract_concluded_in_time_cancels_the_alert_and_starts_follow_up() -> None:
    run = created_run()
    decision = run.send(concluded(date(2026, 4, 10)))
    assert decision.cancel_deadlines == (Deadline("R5.1", date(2026, 4, 27), "case-1").deadline_id,)
    assert decision.set_deadlines == (Deadline("R5.3", date(2026, 7, 10), "case-1"),)
    assert run.state.cases["case-1"].contract_concluded_on == date(2026, 4, 10)
    run.advance(utc(2026, 5, 1))
    assert notices(run, "contract-overdue") == []


def test_r5_1_replayed_contract_changes_nothing() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    before = run.state
    again = run.send(concluded(date(2026, 4, 10)))
    assert again.state is before and again.outputs == () and again.set_deadlines == () and again.cancel_deadlines == ()


@pytest.mark.parametrize(("employment", "education"), [(None, None), ("", None), ("  ", "")])
def test_r5_2_contract_without_goal_rejected(employment: str | None, education: str | None) -> None:
    run = created_run()
    before = run.state
    decision = run.send(concluded(date(2026, 4, 10), employment_goal=employment, education_goal=education))
    [rejected] = decision.outputs
    assert isinstance(rejected, Rejected) and rejected.code == "E303 contract-without-goal"
    assert decision.state is before and decision.cancel_deadlines == () and decision.set_deadlines == ()


def test_r5_2_education_goal_alone_is_enough() -> None:
    run = created_run()
    decision = run.send(concluded(date(2026, 4, 10), employment_goal=None, education_goal="vocational school"))
    assert decision.outputs == () and run.state.cases["case-1"].contract_concluded_on == date(2026, 4, 10)


def test_r5_3_follow_up_overdue_repeats_every_three_months_over_leap_day() -> None:
    run = created_run(handover_date=date(2027, 11, 1))
    run.send(concluded(date(2027, 11, 30)))
    assert pending_rules(run, "R5.3") == [date(2028, 2, 29)]  # Nov 30 + 3 months, clamped, leap year
    run.advance(utc(2028, 2, 29, 22, 59))
    assert notices(run, "follow-up-overdue") == []
    run.advance(utc(2028, 2, 29, 23))  # 2028-03-01 00:00 CET
    [first] = notices(run, "follow-up-overdue")
    assert first.details["follow_up_due_date"] == "2028-02-29"
    assert first.details["next_follow_up_due_date"] == "2028-05-29"
    assert first.municipality == JOBCENTER
    assert pending_rules(run, "R5.3") == [date(2028, 5, 29)]
    run.advance(utc(2028, 9, 1))
    assert [n.details["follow_up_due_date"] for n in notices(run, "follow-up-overdue")] == [
        "2028-02-29", "2028-05-29", "2028-08-29"]


def test_r5_3_follow_up_held_restarts_the_three_months() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    run.now = utc(2026, 6, 1)
    decision = run.send(follow_up(date(2026, 5, 31)))
    assert decision.cancel_deadlines == (Deadline("R5.3", date(2026, 7, 10), "case-1").deadline_id,)
    assert pending_rules(run, "R5.3") == [date(2026, 8, 31)]
    assert run.state.cases["case-1"].last_follow_up_on == date(2026, 5, 31)
    run.advance(utc(2026, 8, 31, 21, 59))
    assert notices(run, "follow-up-overdue") == []
    run.advance(utc(2026, 8, 31, 22))
    [notice] = notices(run, "follow-up-overdue")
    assert notice.details["last_follow_up_on"] == "2026-05-31"


def test_r5_3_goals_met_stops_follow_up() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    decision = run.send(follow_up(date(2026, 6, 1), goals_met=True))
    assert decision.cancel_deadlines == (Deadline("R5.3", date(2026, 7, 10), "case-1").deadline_id,)
    assert pending_rules(run, "R5.3") == [] and run.state.cases["case-1"].goals_met
    run.advance(utc(2027, 1, 1))
    assert notices(run, "follow-up-overdue") == []
    assert run.send(follow_up(date(2026, 9, 1))).state is run.state  # nothing follows once goals are met


def test_r5_3_late_registered_follow_up_does_not_break_the_chain() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    run.advance(utc(2026, 7, 12))  # the 2026-07-10 follow-up was overdue; next due 2026-10-10
    assert len(notices(run, "follow-up-overdue")) == 1
    run.send(follow_up(date(2026, 4, 10)))  # registered late: its 3 months ended 2026-07-10
    assert pending_rules(run, "R5.3") == [date(2026, 10, 10)]
    run.send(follow_up(date(2026, 7, 11)))  # a real, recent one moves the chain
    assert pending_rules(run, "R5.3") == [date(2026, 10, 11)]


def test_r5_3_replayed_follow_up_changes_nothing() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    run.send(follow_up(date(2026, 5, 1)))
    before = run.state
    again = run.send(follow_up(date(2026, 5, 1)))
    assert again.state is before and again.set_deadlines == () and again.cancel_deadlines == ()


# ---- acting once, replays, R7.3 ---------------------------------------------------------------


@pytest.mark.parametrize("rule", ["R2.1:CV", "R2.4:CV", "R3.1", "R4.1", "R5.1"])
def test_replaying_the_same_deadline_due_twice_yields_no_second_output(rule: str) -> None:
    run = created_run()
    [deadline_id] = [i for i, d in run.state.pending.items() if d.rule == rule]
    due = due_event(run.state, deadline_id)
    run.now = utc(2026, 6, 1)
    first = run.send(due)
    assert len(first.outputs) == 1 and deadline_id in run.state.fired and deadline_id not in run.state.pending
    second = run.send(due)
    assert second.outputs == () and second.state is first.state
    # A re-sent DeadlineDue with a new event id is still the same deadline.
    assert run.send(replace(due, event_id=new_id())).outputs == ()


def test_r5_3_replaying_the_same_deadline_due_twice_yields_no_second_output() -> None:
    run = created_run()
    run.send(concluded(date(2026, 4, 10)))
    due = due_event(run.state, Deadline("R5.3", date(2026, 7, 10), "case-1").deadline_id)
    run.now = utc(2026, 7, 11)
    assert len(run.send(due).outputs) == 1
    assert run.send(due).outputs == ()


def test_unknown_deadline_id_is_a_noop() -> None:
    run = created_run()
    due = DeadlineDue(event_id=new_id(), occurred_at=utc(2026, 4, 1), producer="deadline-service",
                      deadline_id="R3.1|case-1|2026-01-01", rule="R3.1", due_date=date(2026, 1, 1), case_id="case-1")
    decision = run.send(due)
    assert decision.outputs == () and decision.state is run.state


def test_whole_lifecycle_replayed_gives_identical_output_ids() -> None:
    runs = []
    for _ in range(2):
        run = created_run(cv_number=None)
        run.advance(utc(2026, 5, 21))  # the contract is late (R5.1 fires on 2026-04-28)
        run.send(concluded(date(2026, 5, 20)))
        run.advance(utc(2027, 1, 1))
        runs.append(run)
    ids = [[getattr(o, "notice_id", getattr(o, "output_id", None)) for o in r.outputs] for r in runs]
    assert ids[0] == ids[1] and None not in ids[0] and len(set(ids[0])) == len(ids[0])
    assert CPR not in repr(runs[0].outputs)
    assert {"case-created", "jobnet-profile-requested", "handover-date-passed", "cv-responsibility-moved",
            "contract-overdue", "follow-up-overdue", "DataAreaClosedOut"} <= set(runs[0].kinds())


def test_r7_3_deadline_for_deceased_citizen_says_nothing() -> None:
    run = created_run()
    run.state = replace(run.state, deceased_on=date(2026, 3, 5))
    run.advance(utc(2026, 12, 1))
    assert [o for o in run.outputs if not (isinstance(o, Notice) and o.kind == "case-created")] == []


def test_r7_3_lifecycle_events_for_deceased_citizen_rejected() -> None:
    run = created_run()
    run.state = replace(run.state, deceased_on=date(2026, 3, 5))
    for event in (outside_handover(), concluded(date(2026, 4, 1)), follow_up(date(2026, 4, 2))):
        decision = handle(run.state, event, run.now)
        [rejected] = decision.outputs
        assert isinstance(rejected, Rejected) and rejected.code.startswith("E301")
        assert decision.state is run.state
