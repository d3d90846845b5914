"""The citizen's state and what a processor decides, as frozen dataclasses.

A handler is ``(CitizenState, Event, now) -> Decision``. The decision's ``state`` replaces
the old one; its ``outputs`` are sent by the shell (``streams``) through ``sinks``; its
deadlines are what the deadline service must set or cancel. Personal data sits in one
place, ``CitizenState.personal``, so it can be encrypted and shredded as a unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from processors.events import AbsenceType, DataArea
from processors.frozen import quick_init

__all__ = [
    "Absence",
    "CaseState",
    "CitizenState",
    "DataAreaClosedOut",
    "Deadline",
    "Decision",
    "DeletionRequested",
    "FetchRefused",
    "Notice",
    "Output",
    "PersonalData",
    "Rejected",
    "deterministic_id",
    "iso_date",
]


def deterministic_id(*parts: str) -> str:
    """A stable id derived from an output's cause, so a replay yields the same id.

    The parts must not contain CPR (use the pseudonymous citizen key).
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    # Shaped like a UUID (version nibble 5) so tools that expect UUIDs accept it.
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{digest[16:20]}-{digest[20:32]}"


# A case's nine deadlines fall on three dates and a day's cases on the same ones, and every
# deadline's date is written out as text several times an event (its id, the row's header, the
# state, the index): one string per date, made once, instead of a new one each time.
_ISO_DATES: dict[date, str] = {}
_ISO_DATES_HELD = 4096


def iso_date(day: date) -> str:
    """``day.isoformat()``, the same string object for every equal date held."""
    text = _ISO_DATES.get(day)
    if text is None:
        if len(_ISO_DATES) >= _ISO_DATES_HELD:
            _ISO_DATES.clear()
        text = _ISO_DATES[day] = day.isoformat()
    return text


@quick_init
@dataclass(frozen=True, slots=True)
class PersonalData:
    """Every personal field the pipeline keeps about a citizen, in one record."""

    cpr: str | None = None
    name: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Deadline:
    """A date-based rule that acts at 00:00 Europe/Copenhagen on the day after ``due_date``."""

    rule: str  # e.g. "R2.1:CV", "R3.1", "R4.1", "R5.1", "R5.3", "R8.1", "R8.2"
    due_date: date
    case_id: str = ""
    # Derived once: the id is looked up dozens of times per event (the state's keys, the
    # deadline index), and formatting it each time was a tenth of the step's CPU.
    deadline_id: str = field(init=False, repr=False, compare=False)
    # The due date as ISO text, as the row's header, the state and the index write it.
    due_iso: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        iso = iso_date(self.due_date)
        _set_due_iso(self, iso)
        _set_deadline_id(self, f"{self.rule}|{self.case_id}|{iso}")


# A frozen class's own fields set through their slots (``object.__setattr__`` is the slow way).
_set_due_iso = Deadline.due_iso.__set__  # type: ignore[attr-defined,misc]
_set_deadline_id = Deadline.deadline_id.__set__  # type: ignore[attr-defined,misc]


@quick_init
@dataclass(frozen=True, slots=True)
class CaseState:
    """One case (contact group) and the lifecycle facts derived from it (R1-R5)."""

    case_id: str
    receiving_municipality: str
    jobcenter_municipality: str
    contact_group: int
    handover_date: date
    cv_takeover_date: date
    contract_takeover_date: date
    cv_update_deadline: date
    case_type: str = ""  # untyped (processors.archival.UNTYPED_CASE)
    closed_areas: frozenset[DataArea] = frozenset()
    cv_creation_open: bool = False
    contract_formation_open: bool = False
    handover_passed: bool = False
    cv_responsibility_with_citizen: bool = False
    contract_concluded_on: date | None = None
    last_follow_up_on: date | None = None
    goals_met: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class Absence:
    """A registered periodic condition (R6.1)."""

    absence_id: str
    absence_type: AbsenceType
    start_date: date
    end_date: date | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class CitizenState:
    """Everything the pipeline holds about one citizen, keyed by the pseudonymous citizen key."""

    citizen_key: str
    personal: PersonalData = PersonalData()
    akasse: str | None = None
    municipality: str | None = None
    registered_jobseeker: bool = False
    cases: Mapping[str, CaseState] = field(default_factory=lambda: MappingProxyType({}))
    absences: Mapping[str, Absence] = field(default_factory=lambda: MappingProxyType({}))
    # Retention-governed records (R8): record id -> (kind, date their clock starts).
    records: Mapping[str, tuple[str, date]] = field(default_factory=lambda: MappingProxyType({}))
    # What a record's policy delivers to its destination before deletion (R8.2: the screening
    # result itself), record id -> field -> value; kept only while the record is.
    record_details: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    pending: Mapping[str, Deadline] = field(default_factory=lambda: MappingProxyType({}))
    # Deadline ids and handled cause ids: what has already acted, so a replay acts no more.
    fired: frozenset[str] = frozenset()
    # Every subscriber that has been told something about this citizen (for death notices, R7).
    notified: frozenset[str] = frozenset()
    deceased_on: date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.cases or self.absences or self.records or self.pending or self.personal.cpr)


# ---- outputs: what the shell must do; each carries a deterministic id ----


@quick_init
@dataclass(frozen=True, slots=True)
class Notice:
    """Something subscribers must be told. ``kind`` selects the routing rule; the routing table
    (``processors.routing``) turns it into recipients using the citizen's state."""

    notice_id: str
    kind: str
    cause_event_id: str
    cause_type: str
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    municipality: str | None = None  # overrides the citizen's municipality (e.g. the receiving one)
    exclude: str | None = None  # the subscriber that caused it gets no echo (R6.3)
    # Personal fields the recipient is entitled to (R8.2: the screening score). The shell seals
    # them with the CPR for that recipient alone; ``details`` travel in clear and are never shredded.
    personal: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@quick_init
@dataclass(frozen=True, slots=True)
class DataAreaClosedOut:
    """R2.1: a data area closed; published on ``dfdg.data-area-closed``."""

    output_id: str
    case_id: str
    data_area: DataArea
    closed_on: date


@quick_init
@dataclass(frozen=True, slots=True)
class FetchRefused:
    """R2.3: a fetch request for a closed area, refused with a reason."""

    output_id: str
    cause_event_id: str
    case_id: str
    data_area: DataArea
    reason: str


@quick_init
@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that breaks a rule needing state (e.g. a case for a deceased citizen).
    The shell sends it to the dead-letter topic with ``code`` and ``reason``."""

    cause_event_id: str
    code: str
    reason: str


@quick_init
@dataclass(frozen=True, slots=True)
class DeletionRequested:
    """R7/R8: data must go; the archive-then-delete saga takes it from here."""

    output_id: str
    rule: str
    scope: str  # "citizen" for death, or a record id for retention
    archive: bool


Output = Notice | DataAreaClosedOut | FetchRefused | Rejected | DeletionRequested


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    """What a handler decided: the new state, outputs to send, deadlines to set or cancel."""

    state: CitizenState
    outputs: tuple[Output, ...] = ()
    set_deadlines: tuple[Deadline, ...] = ()
    cancel_deadlines: tuple[str, ...] = ()
