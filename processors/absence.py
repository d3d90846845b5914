"""Stateful absence rules (R6.1-R6.3): registering, deleting and announcing deletions.

The stateless checks (dates, first-use days of R6.4) live in ``processors.validation``; this
module only decides what needs the citizen's state. ``NON_DELETABLE_TYPES`` is the one place
the deletion exception of R6.2 is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from processors.clock import local_date
from processors.events import AbsenceDeleted, AbsenceRegistered, AbsenceType, Event
from processors.frozen import replace
from processors.model import Absence, CitizenState, Decision, Notice, Rejected, deterministic_id
from processors.reference import E301_CITIZEN_DECEASED, E304_ABSENCE_NOT_DELETABLE

__all__ = [
    "DELETING_ROLES",
    "HANDLERS",
    "NON_DELETABLE_TYPES",
    "on_absence_deleted",
    "on_absence_registered",
]

Handler = Callable[[CitizenState, Event, datetime], Decision]

# R6.2 *assumption*. Release 2021-1 (seed 002) allows deleting historical and current absences
# "with the exception of a few absence types" without naming them. We take the two statutory
# leaves: parental leave (Barsel, id 8) and bereavement leave (sorgorlov, which replaces Barsel
# when a child dies). Once begun they carry leave benefit paid outside the jobcentre and the
# a-kasse, so a jobcentre or a-kasse erasing them would silently undo another authority's record.
# R6.2: an absence whose start date is today is current, so the exception applies to it too;
# only absences starting after today stay deletable whatever their type (the pre-2021 rule).
NON_DELETABLE_TYPES: frozenset[AbsenceType] = frozenset({AbsenceType.PARENTAL_LEAVE, AbsenceType.BEREAVEMENT_LEAVE})

# R6.2: who may delete (subscriber-id roles). An empty ``deleted_by`` is accepted: the source
# system already authenticated the act; we then just cannot spare the deleter its echo.
DELETING_ROLES: frozenset[str] = frozenset({"jobcenter", "akasse"})

def _reject(state: CitizenState, event: Event, code: str, reason: str) -> Decision:
    return Decision(state=state, outputs=(Rejected(cause_event_id=event.event_id, code=code, reason=reason),))


def on_absence_registered(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R6.1: keep the absence (type, start, optional end) in the citizen's state.

    A repeat with the same ``absence_id`` replaces the earlier registration (a correction).
    """
    assert isinstance(event, AbsenceRegistered)
    if state.deceased_on is not None:
        return _reject(state, event, E301_CITIZEN_DECEASED, "absence registered for a deceased citizen")
    absence = Absence(event.absence_id, event.absence_type, event.start_date, event.end_date)
    absences = MappingProxyType({**state.absences, event.absence_id: absence})
    return Decision(state=replace(state, absences=absences))


def on_absence_deleted(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R6.2-R6.3: delete a known absence and notify the a-kasse, benefit system and jobcentre.

    Refused (E304) when the absence is unknown, when the deleter is neither a jobcentre nor an
    a-kasse, or when a historical/current absence is of a type in ``NON_DELETABLE_TYPES``.
    The stored absence, not the event, decides type and start date. A replay of the same
    event changes nothing and sends nothing.
    """
    assert isinstance(event, AbsenceDeleted)
    if event.event_id in state.fired:
        return Decision(state=state)
    if state.deceased_on is not None:
        return _reject(state, event, E301_CITIZEN_DECEASED, "absence deleted for a deceased citizen")
    stored = state.absences.get(event.absence_id)
    if stored is None:
        return _reject(state, event, E304_ABSENCE_NOT_DELETABLE,
                       "absence_id: no absence with this absence_id is registered for the citizen (R6.2); "
                       "register it first or check the absence_id")
    role = event.deleted_by.split(":", 1)[0]
    if event.deleted_by and role not in DELETING_ROLES:
        # Named by field, not by the value the publisher sent (it goes to dead-letter headers and logs).
        return _reject(state, event, E304_ABSENCE_NOT_DELETABLE,
                       "deleted_by: only a jobcentre (jobcenter:<municipality>) or an a-kasse (akasse:<fund>) "
                       "may delete an absence (R6.2); leave deleted_by empty or name the deleting subscriber")
    # Historical or current (R6.2): the start date is today or earlier, Copenhagen time.
    started = stored.start_date <= local_date(now)
    if started and stored.absence_type in NON_DELETABLE_TYPES:
        return _reject(state, event, E304_ABSENCE_NOT_DELETABLE,
                       # The type is a symbol of the schema's enum, not text the publisher wrote.
                       f"absence_type: a current or historical absence (start date today or earlier) of type "
                       f"{stored.absence_type.value} may not be deleted (R6.2)")

    details: dict[str, str] = {
        "absence_id": stored.absence_id,
        "absence_type": stored.absence_type.value,
        "start_date": stored.start_date.isoformat(),
        "end_date": stored.end_date.isoformat() if stored.end_date else "",
    }
    # The event may name the a-kasse / municipality at deletion time; else R10 state applies.
    # Routing reads the a-kasse override from details (Notice has no a-kasse field).
    akasse = event.akasse or state.akasse
    if akasse:
        details["akasse"] = akasse
    notice = Notice(
        notice_id=deterministic_id("absence-deleted", state.citizen_key, event.event_id),
        kind="absence-deleted",
        cause_event_id=event.event_id,
        cause_type=type(event).__name__,
        details=MappingProxyType(details),
        municipality=event.municipality or state.municipality,
        exclude=event.deleted_by or None,
    )
    absences = MappingProxyType({k: v for k, v in state.absences.items() if k != event.absence_id})
    new_state = replace(state, absences=absences, fired=state.fired | {event.event_id})
    return Decision(state=new_state, outputs=(notice,))


HANDLERS: Mapping[type[Event], Handler] = MappingProxyType({
    AbsenceRegistered: on_absence_registered,
    AbsenceDeleted: on_absence_deleted,
})
