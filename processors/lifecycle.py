"""The case lifecycle (R1-R5, R7.3): pure handlers ``(CitizenState, Event, now) -> Decision``.

``HANDLERS`` maps inbound event types to handlers; ``DEADLINE_HANDLERS`` (from
``processors.lifecycle_deadlines``) maps deadline rule prefixes to handlers for ``DeadlineDue``.
Events reaching these handlers passed ``processors.validation`` (CPR, municipality, contact
group, R1.3-R1.5 date rules); only rules that need the citizen's state are checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from processors.clock import add_days, add_months, has_passed
from processors.events import (
    CaseCreated,
    ContractConcluded,
    DataArea,
    DataAreaFetchRequested,
    Event,
    FollowUpHeld,
    HandoverDatePassed,
)
from processors.frozen import replace
from processors.lifecycle_common import (
    Handler,
    deadline_notice,
    iso,
    pending_ids,
    reject,
    reschedule,
    typed,
    with_case,
)
from processors.lifecycle_deadlines import DEADLINE_HANDLERS, mark_handover_passed
from processors.lifecycle_policy import (
    AREA_CLOSES_ON,
    CONTRACT_DUE_DAYS,
    CV_UPDATE_DEFAULT_DAYS,
    E306_CASE_ALREADY_EXISTS,
    FOLLOW_UP_MONTHS,
    KIND_CASE_CREATED,
    KIND_JOBNET_PROFILE_REQUESTED,
    OPENINGS,
    RULE_CONTRACT_DUE,
    RULE_CV_RESPONSIBILITY,
    RULE_FOLLOW_UP,
    RULE_HANDOVER,
    area_rule,
)
from processors.model import (
    CaseState,
    CitizenState,
    Deadline,
    Decision,
    FetchRefused,
    Notice,
    Output,
    deterministic_id,
)
from processors.reference import (
    E301_CITIZEN_DECEASED,
    E302_UNKNOWN_CASE,
    E303_CONTRACT_WITHOUT_GOAL,
    E305_DATA_AREA_CLOSED,
)

__all__ = [
    "DEADLINE_HANDLERS",
    "HANDLERS",
    "on_case_created",
    "on_contract_concluded",
    "on_data_area_fetch_requested",
    "on_follow_up_held",
    "on_handover_date_passed",
]


# Reasons name the field and the rule, never a value the publisher sent (nor one kept from an
# earlier event, such as the date of death): they go to the dead-letter headers and the log, which
# outlive the citizen. The letter's sealed value holds the event for whoever may open it.
def _deceased(state: CitizenState, event: Event) -> Decision:
    return reject(state, event, E301_CITIZEN_DECEASED, "the citizen has died; no new facts are accepted (R7.3)")


def _unknown_case(state: CitizenState, event: Event) -> Decision:
    return reject(state, event, E302_UNKNOWN_CASE, "case_id: no case with this case_id is known for the citizen; "
                  "publish its CaseCreated first (R1.1), then replay this event")


def _case_from(event: CaseCreated) -> CaseState:
    """R1.1, R1.3, R1.4: the case with its defaults filled in."""
    cv_takeover = event.early_cv_takeover_date or event.handover_date
    return CaseState(
        case_id=event.case_id,
        receiving_municipality=event.receiving_municipality,
        jobcenter_municipality=event.jobcenter_municipality,
        contact_group=event.contact_group,
        handover_date=event.handover_date,
        cv_takeover_date=cv_takeover,
        contract_takeover_date=event.early_contract_takeover_date or event.handover_date,
        cv_update_deadline=event.cv_update_deadline or add_days(cv_takeover, CV_UPDATE_DEFAULT_DAYS),
        case_type=event.case_type,
    )


def _creation_facts(case: CaseState) -> tuple[object, ...]:
    # What CaseCreated fixes; the lifecycle flags that change later are left out.
    return (case.receiving_municipality, case.jobcenter_municipality, case.contact_group, case.handover_date,
            case.cv_takeover_date, case.contract_takeover_date, case.cv_update_deadline, case.case_type)


def _case_notice(state: CitizenState, kind: str, rule: str, case: CaseState, cause: Event,
                 details: Mapping[str, str]) -> Notice:
    return Notice(
        notice_id=deterministic_id(state.citizen_key, rule, case.case_id, kind),
        kind=kind,
        cause_event_id=cause.event_id,
        cause_type=type(cause).__name__,
        details=MappingProxyType({"rule": rule, "case_id": case.case_id, **details}),
        municipality=case.jobcenter_municipality,
    )


# Each data area's closing deadline rule and date (R2.1), in DataArea's order: iterating the enum
# and formatting the rule for every new case cost more than the deadlines themselves.
_AREA_DEADLINES = tuple((area_rule(area), AREA_CLOSES_ON[area].date_of) for area in DataArea)


def on_case_created(state: CitizenState, event: CaseCreated, now: datetime) -> Decision:
    """R1.1-R1.6, R2.4, R7.3: record the case, tell the jobcentre, set the lifecycle deadlines."""
    if state.deceased_on is not None:
        return _deceased(state, event)
    case = _case_from(event)
    known = state.cases.get(event.case_id)
    if known is not None:
        if _creation_facts(known) == _creation_facts(case):
            return Decision(state=state)  # a replay of the same creation
        return reject(state, event, E306_CASE_ALREADY_EXISTS,
                      "case_id: a case with this case_id already exists with other facts; give a new case a new "
                      "case_id (R1.1)")

    outputs: list[Output] = [_case_notice(state, KIND_CASE_CREATED, "R1.1", case, event, {
        "receiving_municipality": case.receiving_municipality,
        "jobcenter_municipality": case.jobcenter_municipality,
        "contact_group": str(case.contact_group),
        "case_type": case.case_type,
        "handover_date": iso(case.handover_date),
        "cv_takeover_date": iso(case.cv_takeover_date),
        "contract_takeover_date": iso(case.contract_takeover_date),
        "cv_update_deadline": iso(case.cv_update_deadline),
    })]
    if event.cv_number is None:  # R1.6
        outputs.append(_case_notice(state, KIND_JOBNET_PROFILE_REQUESTED, "R1.6", case, event, {}))

    deadlines = [Deadline(rule, closes_on(case), case.case_id) for rule, closes_on in _AREA_DEADLINES]
    for opening in OPENINGS:  # R2.4
        early = opening.early_date(event)
        opens = opening.deadline_for(early, case)
        if early is None or not has_passed(opens.due_date, now):
            deadlines.append(opens)  # a future opening is a deadline like the others
            continue
        # The early takeover date has come by the time the case is recorded: open at once.
        case = opening.mark_open(case)
        outputs.append(deadline_notice(
            state, kind=opening.notice_kind, anchor=opens, cause=event,
            municipality=case.jobcenter_municipality, details={"case_id": case.case_id, "opened_on": iso(early)},
        ))
    deadlines += [
        Deadline(RULE_HANDOVER, case.handover_date, case.case_id),
        Deadline(RULE_CV_RESPONSIBILITY, case.cv_update_deadline, case.case_id),
        Deadline(RULE_CONTRACT_DUE, add_days(case.handover_date, CONTRACT_DUE_DAYS), case.case_id),
    ]

    state = with_case(
        state,
        case,
        personal=replace(state.personal, cpr=event.cpr),  # the only place the CPR is kept
        municipality=state.municipality or case.jobcenter_municipality,
    )
    state, _, added = reschedule(state, add=deadlines)
    return Decision(state=state, outputs=tuple(outputs), set_deadlines=added)


def on_handover_date_passed(state: CitizenState, event: HandoverDatePassed, now: datetime) -> Decision:
    """R3.2: the outside publisher's event; whichever of it and the R3.1 deadline comes first acts."""
    if state.deceased_on is not None:
        return _deceased(state, event)
    case = state.cases.get(event.case_id)
    if case is None:
        return _unknown_case(state, event)
    if case.handover_passed:
        return Decision(state=state)
    return mark_handover_passed(state, case, event)


def _has_goal(event: ContractConcluded) -> bool:
    return bool((event.employment_goal or "").strip() or (event.education_goal or "").strip())


def on_contract_concluded(state: CitizenState, event: ContractConcluded, now: datetime) -> Decision:
    """R5.1-R5.3: a contract with a goal stops the R5.1 alert and starts the 3-monthly follow-up."""
    if state.deceased_on is not None:
        return _deceased(state, event)
    case = state.cases.get(event.case_id)
    if case is None:
        return _unknown_case(state, event)
    if not _has_goal(event):
        return reject(state, event, E303_CONTRACT_WITHOUT_GOAL,
                      "employment_goal, education_goal: the contract states neither; set at least one (R5.2)")
    if case.contract_concluded_on is not None:
        # *Assumption*: the first conclusion is the R5.1 fact; later changes are follow-ups.
        return Decision(state=state)
    state = with_case(state, replace(case, contract_concluded_on=event.concluded_date))
    follow_up = Deadline(RULE_FOLLOW_UP, add_months(event.concluded_date, FOLLOW_UP_MONTHS), case.case_id)
    state, cancelled, added = reschedule(
        state,
        cancel=pending_ids(state, case.case_id, RULE_CONTRACT_DUE),
        add=() if case.goals_met else (follow_up,),
    )
    return Decision(state=state, set_deadlines=added, cancel_deadlines=cancelled)


def on_follow_up_held(state: CitizenState, event: FollowUpHeld, now: datetime) -> Decision:
    """R5.3: a follow-up restarts the 3-month clock; met goals end the follow-up."""
    if state.deceased_on is not None:
        return _deceased(state, event)
    case = state.cases.get(event.case_id)
    if case is None:
        return _unknown_case(state, event)
    if case.goals_met:
        return Decision(state=state)
    older = case.last_follow_up_on is not None and event.held_date <= case.last_follow_up_on
    if older and not event.goals_met:
        return Decision(state=state)  # a replay, or one older than what we know: nothing moves
    last = event.held_date if not older else case.last_follow_up_on
    state = with_case(state, replace(case, last_follow_up_on=last, goals_met=event.goals_met))
    current = pending_ids(state, case.case_id, RULE_FOLLOW_UP)
    if event.goals_met:
        state, cancelled, _ = reschedule(state, cancel=current)
        return Decision(state=state, cancel_deadlines=cancelled)
    if case.contract_concluded_on is None:
        return Decision(state=state)  # no contract yet: its conclusion starts the follow-up
    nxt = Deadline(RULE_FOLLOW_UP, add_months(event.held_date, FOLLOW_UP_MONTHS), case.case_id)
    if nxt.deadline_id in state.fired or has_passed(nxt.due_date, now):
        # A late-registered follow-up whose 3 months are already over: the overdue alert went
        # (or is going) out and the chain already runs; moving it back would stop it.
        return Decision(state=state)
    state, cancelled, added = reschedule(state, cancel=current, add=(nxt,))
    return Decision(state=state, set_deadlines=added, cancel_deadlines=cancelled)


def on_data_area_fetch_requested(state: CitizenState, event: DataAreaFetchRequested, now: datetime) -> Decision:
    """R2.3: refuse a fetch from a closed data area, saying which area, which date closed it and why.

    The area counts as closed once its takeover date has passed by ``now`` even if the R2.1
    deadline has not fired yet, so deadline-service lag never lets a late fetch through.
    A fetch from an open area produces nothing: silence is consent.
    """
    if state.deceased_on is not None:
        return _deceased(state, event)
    case = state.cases.get(event.case_id)
    if case is None:
        return _unknown_case(state, event)
    closing = AREA_CLOSES_ON[event.data_area]
    closes_on = closing.date_of(case)
    if event.data_area not in case.closed_areas and not has_passed(closes_on, now):
        return Decision(state=state)
    # The case is named by the record's case_id field and the closing date by the area's
    # DataAreaClosed record; the reason repeats neither (see _deceased).
    reason = (
        f"{E305_DATA_AREA_CLOSED}: data area {event.data_area.value} of this case is closed: its "
        f"{closing.date_name} has passed (an area closes at 00:00 Europe/Copenhagen the day after that date), "
        f"and once it has nothing more is fetched from the asylum operator for the area (R2.1-R2.3)"
    )
    refused = FetchRefused(
        output_id=deterministic_id(state.citizen_key, "R2.3", case.case_id, event.data_area.value, event.event_id),
        cause_event_id=event.event_id,
        case_id=case.case_id,
        data_area=event.data_area,
        reason=reason,
    )
    return Decision(state=state, outputs=(refused,))


HANDLERS: Mapping[type[Event], Handler] = MappingProxyType({
    CaseCreated: typed(CaseCreated, on_case_created),
    HandoverDatePassed: typed(HandoverDatePassed, on_handover_date_passed),
    ContractConcluded: typed(ContractConcluded, on_contract_concluded),
    FollowUpHeld: typed(FollowUpHeld, on_follow_up_held),
    DataAreaFetchRequested: typed(DataAreaFetchRequested, on_data_area_fetch_requested),
})
