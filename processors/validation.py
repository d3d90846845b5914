"""Stateless validation: rules an event must obey on its own, before any citizen state is read.

``validate`` returns every violation it finds (empty tuple = valid) and never raises. Messages
name the field and the rule so a publisher can fix the event, and never echo a field's value:
a CPR (or a CPR put in the wrong field) must not leak into a dead-letter header or a log.

The bounds of ``processors.bounds`` (string lengths, list sizes, plausible date windows) are
checked first, on every field; a field that breaks one gets only that violation, and the rules
that compare it (age, takeover order, CV deadline, first-use date, end before start) skip it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from processors import bounds
from processors import reference as ref
from processors.events import (
    AbsenceDeleted,
    AbsenceRegistered,
    CaseCreated,
    DeadlineDue,
    Event,
    HandoverDatePassed,
    JobseekerRegistered,
)

__all__ = ["Violation", "cpr_birth_date", "is_valid_cpr", "validate"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CPR = re.compile(r"[0-9]{10}")
_LOCAL = ZoneInfo(ref.LOCAL_TIMEZONE)

# Ids that must not be blank, per field name; checked on whichever event has the field.
_REQUIRED_IDS = ("case_id", "absence_id", "record_id", "result_id", "deadline_id")
# Municipality fields per event type: (field, may be None).
_MUNICIPALITY_FIELDS: dict[type[Event], tuple[tuple[str, bool], ...]] = {
    CaseCreated: (("receiving_municipality", False), ("jobcenter_municipality", False)),
    HandoverDatePassed: (("receiving_municipality", False),),
    JobseekerRegistered: (("municipality", False),),
    AbsenceDeleted: (("municipality", True),),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: a stable ``code`` (see ``processors.reference.ERROR_CODES``), the field, and what to fix."""

    code: str
    field: str
    message: str


def cpr_birth_date(cpr: str) -> date:
    """The birth date in a CPR number ``DDMMYYSSSS``, century from the 7th digit (DOMAIN.md).

    Raises ``ValueError`` (without the CPR in the message) when it is not 10 digits or not a real date.
    """
    if not _CPR.fullmatch(cpr):
        raise ValueError("a CPR number is 10 digits DDMMYYSSSS")
    day, month, yy, seventh = int(cpr[0:2]), int(cpr[2:4]), int(cpr[4:6]), int(cpr[6])
    if seventh <= 3:
        century = 1900
    elif seventh in (4, 9):
        century = 2000 if yy <= 36 else 1900
    else:  # 5-8
        century = 2000 if yy <= 57 else 1800
    try:
        return date(century + yy, month, day)
    except ValueError:
        raise ValueError("the CPR's first six digits are not a real calendar date") from None


def is_valid_cpr(cpr: str) -> bool:
    """True when ``cpr`` is 10 digits with a real birth date. Modulus 11 is deliberately not checked."""
    try:
        cpr_birth_date(cpr)
    except ValueError:
        return False
    return True


def validate(event: Event, today: date) -> tuple[Violation, ...]:
    """Every stateless rule ``event`` breaks, in a stable order; never raises.

    ``today`` is the local processing date: a CPR whose birth date is after it is invalid.
    """
    found: list[Violation] = list(_bounds(event, today))
    flagged = frozenset(v.field for v in found)
    found.extend(_ids(event, flagged))
    cpr = getattr(event, "cpr", None)
    if isinstance(cpr, str) and "cpr" not in flagged:
        found.extend(_cpr(cpr, today))
    found.extend(_municipalities(event, flagged))
    for rule in _RULES.get(type(event), ()):
        found.extend(rule(event, flagged))
    return tuple(found)


def _bounds(event: Event, today: date) -> Iterator[Violation]:
    """Every field against ``processors.bounds``: string length, list size, plausible date window."""
    facts: tuple[date, date] | None = None
    for name in _field_names(type(event)):
        value = getattr(event, name, None)
        if isinstance(value, str):  # most fields: first, before the checks for the other kinds
            if len(value) > (most := bounds.max_length(name)):
                yield Violation(ref.E211_VALUE_TOO_LONG, name, f"{name} is longer than {most:,} characters")
        elif value is None:
            pass
        elif isinstance(value, datetime):  # before date: a datetime is a date too
            first, last = bounds.occurred_at_window(today)
            local = _local_date(value)
            if not first <= local <= last:
                ahead = f"{bounds.OCCURRED_AT_MAX_DAYS_AHEAD} day{'s' * (bounds.OCCURRED_AT_MAX_DAYS_AHEAD != 1)}"
                fault = bounds.FAULT_OCCURRED_AT_TOO_EARLY if local < first else bounds.FAULT_OCCURRED_AT_TOO_LATE
                yield Violation(ref.E212_DATE_OUT_OF_RANGE, name,
                                f"{name} is {'before' if local < first else 'after'} the plausible window: its "
                                f"Copenhagen date must be from {first.isoformat()} to {last.isoformat()} "
                                f"(today + {ahead}); it is {fault}")
        elif isinstance(value, date):
            facts = facts or bounds.fact_date_window(today)  # computed once, only for events with dates
            first, last = facts
            if not first <= value <= last:
                fault = bounds.FAULT_TOO_EARLY if value < first else bounds.FAULT_FACT_TOO_LATE
                yield Violation(ref.E212_DATE_OUT_OF_RANGE, name,
                                f"{name} is {'before' if value < first else 'after'} the plausible window "
                                f"{first.isoformat()} to {last.isoformat()} "
                                f"(today + {bounds.FACT_DATE_MAX_YEARS_AHEAD} years): {fault}")
        elif isinstance(value, tuple | list):
            yield from _list_bound(name, value)


def _list_bound(name: str, items: tuple[object, ...] | list[object]) -> Iterator[Violation]:
    if len(items) > bounds.MAX_LIST_ITEMS:
        yield Violation(ref.E211_VALUE_TOO_LONG, name, f"{name} has more than {bounds.MAX_LIST_ITEMS} items")
        return
    most = bounds.max_length(name)
    if any(isinstance(item, str) and len(item) > most for item in items):
        yield Violation(ref.E211_VALUE_TOO_LONG, name, f"an item of {name} is longer than {most:,} characters")


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _ids(event: Event, flagged: frozenset[str]) -> Iterator[Violation]:
    if "event_id" not in flagged and (not isinstance(event.event_id, str) or not _UUID.fullmatch(event.event_id)):
        yield Violation(ref.E210_INVALID_EVENT_ID, "event_id",
                        "event_id must be a UUID (8-4-4-4-12 hex digits); give every event a fresh one")
    for name in _REQUIRED_IDS:
        value = getattr(event, name, None)
        if name in flagged or (name == "case_id" and isinstance(event, DeadlineDue)):
            continue  # too long already said; a deadline about the citizen as a whole has no case
        if isinstance(value, str) and not value.strip():
            yield Violation(ref.E210_INVALID_EVENT_ID, name, f"{name} is blank; it is required for this event type")


def _cpr(cpr: str, today: date) -> Iterator[Violation]:
    try:
        born = cpr_birth_date(cpr)
    except ValueError as exc:
        yield Violation(ref.E201_INVALID_CPR, "cpr", f"cpr is invalid: {exc}")
        return
    if born > today:
        yield Violation(ref.E201_INVALID_CPR, "cpr",
                        "cpr is invalid: its birth date (century from digit 7) is in the future")


def _municipalities(event: Event, flagged: frozenset[str]) -> Iterator[Violation]:
    for name, optional in _MUNICIPALITY_FIELDS.get(type(event), ()):
        value = getattr(event, name)
        if (value is None and optional) or name in flagged:
            continue
        if value not in ref.MUNICIPALITIES:
            yield Violation(ref.E202_INVALID_MUNICIPALITY, name,
                            f"{name} must be one of the 98 official 3-digit municipality codes (e.g. 101 København)")


def _case_created(event: Event, flagged: frozenset[str]) -> Iterator[Violation]:
    if not isinstance(event, CaseCreated):
        return
    if event.contact_group not in ref.CONTACT_GROUPS:
        allowed = ", ".join(str(g) for g in sorted(ref.CONTACT_GROUPS))
        yield Violation(ref.E203_INVALID_CONTACT_GROUP, "contact_group",
                        f"contact_group must be one of {allowed} (R1.2)")
    for name in ("early_cv_takeover_date", "early_contract_takeover_date"):
        early: date | None = getattr(event, name)
        if early is not None and early > event.handover_date and not flagged & {name, "handover_date"}:
            yield Violation(ref.E204_EARLY_TAKEOVER_AFTER_HANDOVER, name,
                            f"{name} is later than handover_date; it may be at most the handover date (R1.3)")
    # Subtracting (not adding to the handover date) cannot overflow at the ends of the date range.
    days = None if event.cv_update_deadline is None else (event.cv_update_deadline - event.handover_date).days
    if days is not None and days > ref.CV_DEADLINE_MAX_DAYS and not flagged & {"cv_update_deadline", "handover_date"}:
        yield Violation(ref.E205_CV_DEADLINE_TOO_LATE, "cv_update_deadline",
                        f"cv_update_deadline is {days} days after handover_date; at most "
                        f"{ref.CV_DEADLINE_MAX_DAYS} are allowed (R1.4)")
    if not event.minor_national_support and not flagged & {"cpr", "occurred_at"} and is_valid_cpr(event.cpr):
        created, born = _local_date(event.occurred_at), cpr_birth_date(event.cpr)
        if created < born:
            # Not "under 15": nobody has a case before they are born, so the date or the CPR is wrong.
            yield Violation(ref.E213_CREATED_BEFORE_BIRTH, "occurred_at",
                            "occurred_at (the creation date) is before the birth date in the cpr (century from "
                            "digit 7); check the publisher's clock and the cpr (R1.5)")
        elif _age(born, created) < ref.MINIMUM_AGE:
            yield Violation(ref.E206_CITIZEN_UNDER_15, "cpr",
                            f"the citizen is under {ref.MINIMUM_AGE} on the creation date; set minor_national_support "
                            "if the case follows the national-support procedure for minors (R1.5)")


def _absence(event: Event, flagged: frozenset[str]) -> Iterator[Violation]:
    if not isinstance(event, AbsenceRegistered | AbsenceDeleted):
        return
    dates_ok = not flagged & {"start_date", "end_date"}
    if event.end_date is not None and event.end_date < event.start_date and dates_ok:
        yield Violation(ref.E209_END_BEFORE_START, "end_date",
                        "end_date is before start_date; swap them or drop end_date")
    if not isinstance(event, AbsenceRegistered):
        return  # a deletion names an absence that already exists; only a registration brings a new one
    first = ref.ABSENCE_TYPE_FIRST_USE.get(event.absence_type)
    if first is not None and event.start_date < first and "start_date" not in flagged:
        yield Violation(ref.E207_ABSENCE_TYPE_NOT_YET_VALID, "start_date",
                        f"absence type {event.absence_type.value} may first be used from {first.isoformat()} (R6.4)")
    if event.education_benefit_recipient and event.absence_type in ref.ABSENCE_TYPE_NOT_FOR_EDUCATION_BENEFIT:
        yield Violation(ref.E208_ABSENCE_TYPE_NOT_ALLOWED, "absence_type",
                        f"absence type {event.absence_type.value} is not allowed for "
                        "education-benefit recipients (R6.4)")


_RULES: dict[type[Event], tuple[Callable[[Event, frozenset[str]], Iterator[Violation]], ...]] = {
    CaseCreated: (_case_created,),
    AbsenceRegistered: (_absence,),
    AbsenceDeleted: (_absence,),
}


def _local_date(instant: datetime) -> date:
    """The Copenhagen calendar date of an instant (naive = UTC); the UTC date at the ends of the datetime range."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    try:
        return aware.astimezone(_LOCAL).date()
    except (OverflowError, ValueError):
        return aware.date()


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
