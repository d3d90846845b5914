"""What the lifecycle deadlines do when they fire (R2.1, R2.4, R3.1, R4.1, R5.1, R5.3).

Each handler takes the ``DeadlineDue`` the deadline service sends to the citizen's partition.
A deadline acts once: it must still be in ``state.pending`` and not in ``state.fired``;
firing moves it from the one to the other, so a replayed ``DeadlineDue`` changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from processors.clock import add_months
from processors.events import DataArea, DeadlineDue, Event
from processors.frozen import replace
from processors.lifecycle_common import (
    Handler,
    consume_deadline,
    deadline_notice,
    iso,
    pending_ids,
    reschedule,
    with_case,
)
from processors.lifecycle_policy import (
    FOLLOW_UP_MONTHS,
    KIND_CONTRACT_OVERDUE,
    KIND_CV_RESPONSIBILITY_MOVED,
    KIND_FOLLOW_UP_OVERDUE,
    KIND_HANDOVER_DATE_PASSED,
    OPENINGS,
    RULE_CONTRACT_DUE,
    RULE_CV_RESPONSIBILITY,
    RULE_DATA_AREA_CLOSES,
    RULE_FOLLOW_UP,
    RULE_HANDOVER,
    RULE_OPENS,
    TASK_ISSUE_JOBNET_LOGIN_CODES,
)
from processors.model import CaseState, CitizenState, DataAreaClosedOut, Deadline, Decision, deterministic_id

__all__ = ["DEADLINE_HANDLERS", "mark_handover_passed"]

_RuleAction = Callable[[CitizenState, CaseState, Deadline, DeadlineDue], Decision]
_OPENINGS_BY_KEY = {o.key: o for o in OPENINGS}


def _suffix(rule: str) -> str:
    return rule.split(":", 1)[1] if ":" in rule else ""


def _once(action: _RuleAction) -> Handler:
    """Wrap a rule action with the act-once check and the lookup of the deadline's case."""

    def handle(state: CitizenState, event: Event, now: datetime) -> Decision:
        if not isinstance(event, DeadlineDue):
            raise TypeError(f"deadline handlers take DeadlineDue, not {type(event).__name__}")
        # The state's copy is authoritative: the message only names which deadline is due.
        deadline = state.pending.get(event.deadline_id)
        if deadline is None or event.deadline_id in state.fired:
            return Decision(state=state)
        state = consume_deadline(state, event.deadline_id)
        case = state.cases.get(deadline.case_id)
        # R7.3: nothing more is said about a deceased citizen (R7 also cancels these deadlines).
        if case is None or state.deceased_on is not None:
            return Decision(state=state)
        return action(state, case, deadline, event)

    handle.__name__ = action.__name__
    handle.__doc__ = action.__doc__
    return handle


def _close_data_area(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R2.1/R2.2: the area's takeover date has passed; nothing more is fetched for it."""
    area = DataArea(_suffix(deadline.rule))
    if area in case.closed_areas:
        return Decision(state=state)
    state = with_case(state, replace(case, closed_areas=case.closed_areas | {area}))
    closed = DataAreaClosedOut(
        output_id=deterministic_id(state.citizen_key, deadline.deadline_id, "data-area-closed"),
        case_id=case.case_id,
        data_area=area,
        closed_on=deadline.due_date,
    )
    return Decision(state=state, outputs=(closed,))


def _open(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R2.4: CV creation / contract formation opens now: on its early takeover date, or, without
    one, now that the handover date has passed."""
    opening = _OPENINGS_BY_KEY[_suffix(deadline.rule)]
    if opening.is_open(case):
        return Decision(state=state)
    state = with_case(state, opening.mark_open(case))
    notice = deadline_notice(
        state,
        kind=opening.notice_kind,
        anchor=deadline,
        cause=cause,
        municipality=case.jobcenter_municipality,
        details={"case_id": case.case_id, "opened_on": iso(opening.opened_on(deadline, case))},
    )
    return Decision(state=state, outputs=(notice,))


def mark_handover_passed(state: CitizenState, case: CaseState, cause: Event) -> Decision:
    """R3.1/R3.2: the receiving municipality now carries the integration responsibility.

    Shared by the R3.1 deadline and the outside ``HandoverDatePassed`` event. The notice id is
    derived from the R3.1 deadline either way, so the two paths name the same fact alike.
    """
    anchor = Deadline(RULE_HANDOVER, case.handover_date, case.case_id)
    state = with_case(state, replace(case, handover_passed=True))
    state, cancelled, _ = reschedule(state, cancel=pending_ids(state, case.case_id, RULE_HANDOVER))
    notice = deadline_notice(
        state,
        kind=KIND_HANDOVER_DATE_PASSED,
        anchor=anchor,
        cause=cause,
        municipality=case.receiving_municipality,
        details={"case_id": case.case_id, "handover_date": iso(case.handover_date)},
    )
    return Decision(state=state, outputs=(notice,), cancel_deadlines=cancelled)


def _handover(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R3.1 via the deadline; a no-op when the outside event (R3.2) came first."""
    if case.handover_passed:
        return Decision(state=state)
    return mark_handover_passed(state, case, cause)


def _cv_responsibility(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R4.1: the CV update deadline has passed; the citizen keeps the CV from now on."""
    if case.cv_responsibility_with_citizen:
        return Decision(state=state)
    state = with_case(state, replace(case, cv_responsibility_with_citizen=True))
    notice = deadline_notice(
        state,
        kind=KIND_CV_RESPONSIBILITY_MOVED,
        anchor=deadline,
        cause=cause,
        municipality=case.jobcenter_municipality,
        details={
            "case_id": case.case_id,
            "cv_update_deadline": iso(case.cv_update_deadline),
            "task": TASK_ISSUE_JOBNET_LOGIN_CODES,
        },
    )
    return Decision(state=state, outputs=(notice,))


def _contract_due(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R5.1: 30 days after the handover date and no contract: alert the jobcentre."""
    if case.contract_concluded_on is not None:
        return Decision(state=state)
    notice = deadline_notice(
        state,
        kind=KIND_CONTRACT_OVERDUE,
        anchor=deadline,
        cause=cause,
        municipality=case.jobcenter_municipality,
        details={
            "case_id": case.case_id,
            "handover_date": iso(case.handover_date),
            "contract_due_date": iso(deadline.due_date),
        },
    )
    return Decision(state=state, outputs=(notice,))


def _follow_up_due(state: CitizenState, case: CaseState, deadline: Deadline, cause: DeadlineDue) -> Decision:
    """R5.3: no follow-up in the last 3 months: alert the jobcentre and look again in 3 months."""
    if case.goals_met:
        return Decision(state=state)
    last = case.last_follow_up_on or case.contract_concluded_on
    if last is not None and add_months(last, FOLLOW_UP_MONTHS) > deadline.due_date:
        # A follow-up was held since this deadline was set; keep the chain from that one.
        nxt = Deadline(RULE_FOLLOW_UP, add_months(last, FOLLOW_UP_MONTHS), case.case_id)
        state, _, added = reschedule(state, add=(nxt,))
        return Decision(state=state, set_deadlines=added)
    nxt = Deadline(RULE_FOLLOW_UP, add_months(deadline.due_date, FOLLOW_UP_MONTHS), case.case_id)
    state, _, added = reschedule(state, add=(nxt,))
    details = {
        "case_id": case.case_id,
        "follow_up_due_date": iso(deadline.due_date),
        "next_follow_up_due_date": iso(nxt.due_date),
    }
    if case.last_follow_up_on is not None:
        details["last_follow_up_on"] = iso(case.last_follow_up_on)
    elif case.contract_concluded_on is not None:
        details["contract_concluded_on"] = iso(case.contract_concluded_on)
    notice = deadline_notice(
        state,
        kind=KIND_FOLLOW_UP_OVERDUE,
        anchor=deadline,
        cause=cause,
        municipality=case.jobcenter_municipality,
        details=details,
    )
    return Decision(state=state, outputs=(notice,), set_deadlines=added)


DEADLINE_HANDLERS: Mapping[str, Handler] = MappingProxyType({
    RULE_DATA_AREA_CLOSES: _once(_close_data_area),
    RULE_OPENS: _once(_open),
    RULE_HANDOVER: _once(_handover),
    RULE_CV_RESPONSIBILITY: _once(_cv_responsibility),
    RULE_CONTRACT_DUE: _once(_contract_due),
    RULE_FOLLOW_UP: _once(_follow_up_due),
})
