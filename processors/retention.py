"""Retention policies as data (R8.3) and the handlers that put retention-governed records on a clock.

One table, ``POLICIES``, says per data area / record kind how long it is kept, what starts the
clock, whether it must be archived (R9) and where it goes before deletion. The handlers for
``ReferralRecordEnded`` (R8.1) and ``ScreeningResultMade`` (R8.2) store the record in
``CitizenState.records`` (with the fields its policy delivers, R8.2's screening result, in
``CitizenState.record_details``) and set a deadline; when the deadline fires the record is handed
to its destination (if any) and deletion is requested.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

from processors.events import DeadlineDue, Event, ReferralRecordEnded, ScreeningResultMade
from processors.frozen import replace
from processors.model import CitizenState, Deadline, Decision, DeletionRequested, Notice, Rejected, deterministic_id
from processors.reference import E301_CITIZEN_DECEASED

__all__ = [
    "ARCHIVE",
    "DEADLINE_HANDLERS",
    "HANDLERS",
    "POLICIES",
    "STATISTICS",
    "Handler",
    "Period",
    "RetentionPolicy",
    "fire_retention",
    "on_referral_record_ended",
    "on_screening_result_made",
    "policy_for_rule",
    "visible_to_citizen",
]

Handler = Callable[[CitizenState, Event, datetime], Decision]

ARCHIVE = "archive:rigsarkivet"
STATISTICS = "statistics:star"


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period; month arithmetic clamps to the last day (31 Aug + 6 months = 28/29 Feb)."""

    years: int = 0
    months: int = 0
    days: int = 0

    def after(self, start: date) -> date:
        """The date this period after ``start``."""
        total = start.year * 12 + (start.month - 1) + self.years * 12 + self.months
        year, month = divmod(total, 12)
        day = min(start.day, calendar.monthrange(year, month + 1)[1])
        return date.fromordinal(date(year, month + 1, day).toordinal() + self.days)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How one data area / record kind is retained (R8.3)."""

    kind: str
    rule: str
    clock: str  # what starts the retention period
    retention: Period | None  # None: kept while the purpose lasts, i.e. until death (R7.1)
    archive: bool  # must be delivered to the archive and receipted before deletion (R7.2, R9)
    destination: str | None  # where it goes before deletion: ARCHIVE, STATISTICS or nowhere
    citizen_visible: Period | None = None  # how long the citizen may see it (R8.2)
    note: str = ""
    # Fields of the record's event kept with it and delivered to ``destination`` before deletion.
    delivered_fields: tuple[str, ...] = ()


def _policies(*rows: RetentionPolicy) -> Mapping[str, RetentionPolicy]:
    return MappingProxyType({row.kind: row for row in rows})


POLICIES: Mapping[str, RetentionPolicy] = _policies(
    RetentionPolicy("REFERRAL_RECORD", "R8.1", "ended_date", Period(years=2), archive=False, destination=None),
    RetentionPolicy(
        "SCREENING_RESULT",
        "R8.2",
        "made_date",
        Period(months=6),
        archive=False,
        destination=STATISTICS,
        citizen_visible=Period(days=90),
        # R8.2: the warehouse receives the screening result itself, not only its id and date; it
        # travels in the notification's sealed personal part, and only when the publisher sent one.
        delivered_fields=("score",),
        note=(
            "the 90 days the citizen sees the result are not enforced here: no subscriber of this pipeline "
            "shows anything to citizens (recipients are a-kasser, benefit systems, jobcentres, the archive "
            "and statistics), so the citizen's view belongs to the system that shows it (Jobnet), which can "
            "ask visible_to_citizen(); the pipeline enforces the caseworker's 6 months, then statistics, "
            "then deletion"
        ),
    ),
    # R9.1: the four asylum-operator data areas of a programme/course case. Which cases count
    # as programme/course cases is decided in processors.archival (case type, contact group).
    *(
        RetentionPolicy(
            f"PROGRAMME_CASE:{area}",
            "R9.1",
            "death",
            None,
            archive=True,
            destination=ARCHIVE,
            note="only for cases processors.archival.is_archived() accepts",
        )
        for area in ("CV", "INTEGRATION_CONTRACT", "OTHER_INFORMATION", "ATTACHMENTS")
    ),
    # R9.2: cases that are only benefit payments (and unknown non-programme cases) are not archived.
    RetentionPolicy("NON_ARCHIVED_CASE", "R9.2", "death", None, archive=False, destination=None),
    # R10: registration data has no archive obligation.
    RetentionPolicy("REGISTRATION", "R10.1", "death", None, archive=False, destination=None),
    # Assumption: absences (R6) have no archive obligation; the sources are silent.
    RetentionPolicy(
        "ABSENCES",
        "R6.1",
        "death",
        None,
        archive=False,
        destination=None,
        note="assumption: sources name no archive obligation for absences",
    ),
)


def policy_for_rule(rule: str) -> RetentionPolicy:
    """The record policy whose deadline rule is ``rule`` ("R8.1", "R8.2")."""
    for policy in POLICIES.values():
        if policy.rule == rule and policy.retention is not None:
            return policy
    raise KeyError(rule)


def visible_to_citizen(kind: str, clock_start: date, today: date) -> bool:
    """R8.2: whether the citizen may still see a record of ``kind`` on ``today``.

    The policy query for a citizen-facing reader; the pipeline itself has none (see the
    SCREENING_RESULT row's note), so nothing here calls it."""
    window = POLICIES[kind].citizen_visible
    return window is None or today <= window.after(clock_start)


def _delivered(policy: RetentionPolicy, event: Event) -> Mapping[str, str]:
    # A field the publisher left out (None) is not delivered at all: "None" or a default would
    # reach the destination looking like a real result.
    values = {name: getattr(event, name) for name in policy.delivered_fields}
    return MappingProxyType({name: str(value) for name, value in values.items() if value is not None})


def _start_clock(state: CitizenState, event: Event, record_id: str, kind: str, start: date) -> Decision:
    if event.event_id in state.fired or record_id in state.records:
        return Decision(state)  # replay or duplicate: the clock is already running
    if state.deceased_on is not None:
        # R7: the purpose has ended; nothing new is kept for a deceased citizen.
        reason = "the citizen is deceased; no new records are kept (R7)"
        return Decision(state, outputs=(Rejected(event.event_id, E301_CITIZEN_DECEASED, reason),))
    policy = POLICIES[kind]
    assert policy.retention is not None  # record kinds always have a period
    deadline = Deadline(policy.rule, policy.retention.after(start), case_id=record_id)
    new_state = replace(
        state,
        records=MappingProxyType({**state.records, record_id: (kind, start)}),
        record_details=(MappingProxyType({**state.record_details, record_id: _delivered(policy, event)})
                        if policy.delivered_fields else state.record_details),
        pending=MappingProxyType({**state.pending, deadline.deadline_id: deadline}),
        fired=state.fired | {event.event_id},
    )
    return Decision(new_state, set_deadlines=(deadline,))


def on_referral_record_ended(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R8.1: keep the referral record and set its deletion deadline (ended date + 2 years)."""
    assert isinstance(event, ReferralRecordEnded)  # dispatch guarantees the type
    return _start_clock(state, event, event.record_id, "REFERRAL_RECORD", event.ended_date)


def on_screening_result_made(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R8.2: keep the screening result and set its statistics-then-delete deadline (made + 6 months)."""
    assert isinstance(event, ScreeningResultMade)  # dispatch guarantees the type
    return _start_clock(state, event, event.result_id, "SCREENING_RESULT", event.made_date)


def fire_retention(state: CitizenState, event: Event, now: datetime) -> Decision:
    """A retention deadline passed: hand the record to its destination, request deletion, forget it."""
    assert isinstance(event, DeadlineDue)  # dispatch guarantees the type
    record_id = event.case_id
    held = state.records.get(record_id)
    if event.deadline_id in state.fired or held is None:
        return Decision(state)  # already acted, or the record went another way (e.g. death)
    kind, start = held
    policy = POLICIES[kind]
    outputs: list[Notice | DeletionRequested] = []
    if policy.destination == STATISTICS:
        # Delivered before deletion (R8.2); routing sends this kind to statistics:star.
        outputs.append(
            Notice(
                notice_id=deterministic_id(state.citizen_key, event.deadline_id, "statistics"),
                kind="screening-result-for-statistics",
                cause_event_id=event.event_id,
                cause_type="DeadlineDue",
                details=MappingProxyType({"record_id": record_id, "kind": kind, "clock_start": start.isoformat()}),
                # The result itself is personal: sealed for the recipient, never in clear details
                # on a topic kept 30 days and not shredded with the citizen.
                personal=MappingProxyType(dict(state.record_details.get(record_id, {}))),
            )
        )
    outputs.append(
        DeletionRequested(
            output_id=deterministic_id(state.citizen_key, event.deadline_id, "delete"),
            rule=policy.rule,
            scope=record_id,
            archive=policy.archive,
        )
    )
    new_state = replace(
        state,
        records=MappingProxyType({k: v for k, v in state.records.items() if k != record_id}),
        record_details=MappingProxyType({k: v for k, v in state.record_details.items() if k != record_id}),
        pending=MappingProxyType({k: v for k, v in state.pending.items() if k != event.deadline_id}),
        fired=state.fired | {event.deadline_id},
    )
    return Decision(new_state, outputs=tuple(outputs))


HANDLERS: Mapping[type[Event], Handler] = MappingProxyType(
    {ReferralRecordEnded: on_referral_record_ended, ScreeningResultMade: on_screening_result_made}
)
DEADLINE_HANDLERS: Mapping[str, Handler] = MappingProxyType({"R8.1": fire_retention, "R8.2": fire_retention})
