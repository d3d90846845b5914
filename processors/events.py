"""The events publishers send, as frozen dataclasses.

Each class mirrors one Avro schema in ``schemas/`` (``dk.dfdg.events.<ClassName>``) field
for field; ``schemas`` decodes into these and ``tests/schemas`` checks the two agree.
Personal fields (CPR, names, free text) are named in ``PERSONAL_FIELDS`` so one place knows
what must be pseudonymised, encrypted or shredded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from processors.frozen import quick_init

__all__ = [
    "EVENT_TYPES",
    "PERSONAL_FIELDS",
    "AbsenceDeleted",
    "AbsenceRegistered",
    "AbsenceType",
    "CaseCreated",
    "CitizenDeceased",
    "ContractConcluded",
    "DataArea",
    "DataAreaFetchRequested",
    "DeadlineDue",
    "Event",
    "FollowUpHeld",
    "HandoverDatePassed",
    "JobseekerDeregistered",
    "JobseekerRegistered",
    "ReferralRecordEnded",
    "ScreeningResultMade",
    "topic_for",
]


class DataArea(str, Enum):
    """The four data areas fetched from the asylum operator (R1.7)."""

    CV = "CV"
    INTEGRATION_CONTRACT = "INTEGRATION_CONTRACT"
    OTHER_INFORMATION = "OTHER_INFORMATION"
    ATTACHMENTS = "ATTACHMENTS"


class AbsenceType(str, Enum):
    """Periodic conditions (R6.1, R6.4). First-use dates live in ``processors.policy``."""

    HOLIDAY = "HOLIDAY"
    SICKNESS = "SICKNESS"
    PARENTAL_LEAVE = "PARENTAL_LEAVE"  # "Barsel", id 8 in the source system
    EXEMPT_FROM_AVAILABILITY = "EXEMPT_FROM_AVAILABILITY"
    LESS_INTENSIVE_EFFORT = "LESS_INTENSIVE_EFFORT"
    BEREAVEMENT_LEAVE = "BEREAVEMENT_LEAVE"  # "sorgorlov"
    EXEMPT_MINK_EDUCATION = "EXEMPT_MINK_EDUCATION"


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event carries."""

    event_id: str
    occurred_at: datetime
    producer: str


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CaseCreated(Event):
    """R1: a case (contact group) is created for a citizen."""

    cpr: str
    case_id: str
    receiving_municipality: str
    jobcenter_municipality: str
    contact_group: int
    handover_date: date
    early_cv_takeover_date: date | None = None
    early_contract_takeover_date: date | None = None
    cv_update_deadline: date | None = None
    cv_number: str | None = None
    minor_national_support: bool = False
    case_type: str = ""  # untyped: processors.archival.UNTYPED_CASE decides (R9)


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverDatePassed(Event):
    """R3: the handover date has passed (from an outside publisher or the pipeline itself)."""

    cpr: str
    case_id: str
    handover_date: date
    receiving_municipality: str


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AbsenceRegistered(Event):
    """R6.1: a periodic condition (absence or exemption) is registered."""

    cpr: str
    absence_id: str
    absence_type: AbsenceType
    start_date: date
    end_date: date | None = None
    registered_by: str = ""
    education_benefit_recipient: bool = False


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AbsenceDeleted(Event):
    """R6.2-R6.3: an absence is deleted by a jobcentre or an a-kasse (``deleted_by`` is a subscriber id)."""

    cpr: str
    absence_id: str
    absence_type: AbsenceType
    start_date: date
    end_date: date | None = None
    deleted_by: str = ""
    akasse: str | None = None
    municipality: str | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenDeceased(Event):
    """R7: the CPR register reports a death."""

    cpr: str
    date_of_death: date


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class JobseekerRegistered(Event):
    """R10.1: registration as a job seeker; the source of a citizen's a-kasse and municipality."""

    cpr: str
    name: str
    registration_date: date
    municipality: str
    benefit_category: str
    unemployment_degree: float
    job_titles: tuple[str, ...] = field(default=())
    akasse: str | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class JobseekerDeregistered(Event):
    """R10.1: deregistration as a job seeker."""

    cpr: str
    deregistration_date: date
    reason: str


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractConcluded(Event):
    """R5.1-R5.2: the integration contract ("Min Plan") is concluded."""

    cpr: str
    case_id: str
    concluded_date: date
    employment_goal: str | None = None
    education_goal: str | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUpHeld(Event):
    """R5.3: a follow-up on the contract was held."""

    cpr: str
    case_id: str
    held_date: date
    goals_met: bool = False


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class DataAreaFetchRequested(Event):
    """R2.3: a request to fetch a data area from the asylum operator."""

    cpr: str
    case_id: str
    data_area: DataArea
    requested_by: str = ""


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ReferralRecordEnded(Event):
    """R8.1: a systematic referral record ended; it is deleted two years later."""

    cpr: str
    record_id: str
    ended_date: date


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningResultMade(Event):
    """R8.2: a digital screening result was made; statistics then deletion six months later."""

    cpr: str
    result_id: str
    made_date: date
    # None when the publisher sent no score: a missing result must never pass for a real one.
    score: int | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlineDue(Event):
    """Internal: a durable deadline's date has passed. Sent by the deadline service to the
    citizen's own partition so firing goes through the same ordered, idempotent path as events.
    Carries no CPR: the citizen is the message key."""

    deadline_id: str
    rule: str
    due_date: date
    case_id: str = ""


EVENT_TYPES: tuple[type[Event], ...] = (
    CaseCreated,
    HandoverDatePassed,
    AbsenceRegistered,
    AbsenceDeleted,
    CitizenDeceased,
    JobseekerRegistered,
    JobseekerDeregistered,
    ContractConcluded,
    FollowUpHeld,
    DataAreaFetchRequested,
    ReferralRecordEnded,
    ScreeningResultMade,
)

# One place that knows which fields hold personal data (pseudonymise, encrypt, shred).
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"cpr", "name", "job_titles", "employment_goal", "education_goal", "score"})


def topic_for(event_type: type[Event]) -> str:
    """Ingress topic of an event type: ``dfdg.<kebab-case name>`` (``CaseCreated`` -> ``dfdg.case-created``)."""
    name = event_type.__name__
    kebab = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    return f"dfdg.{kebab}"
