"""Records of the archive-then-delete saga (R7, R9), namespace ``dk.dfdg.out``.

Each class mirrors ``schemas/<ClassName>.avsc`` field for field and registers itself below.
``ArchivedCase`` is the payload record inside an archival package (``data/cases.avro`` and
``data/cases.jsonl``); the others travel on Kafka. None of them puts a CPR in a name or key:
``ArchivedCase.cpr`` is payload for the archive only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from processors.events import DataArea
from schemas.registry import OUT_NAMESPACE, register_record

__all__ = ["ArchiveDelivered", "ArchiveReceipt", "ArchiveRejected", "ArchiveRetry", "ArchivedCase", "DeletionCompleted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivedCase:
    """One archived case in a package; carries its case type and programme (R9.3)."""

    package_id: str
    case_id: str
    cpr: str | None
    case_type: str
    programme: str
    legal_basis: str
    contact_group: int
    receiving_municipality: str
    jobcenter_municipality: str
    handover_date: date
    cv_takeover_date: date
    contract_takeover_date: date
    cv_update_deadline: date
    contract_concluded_on: date | None
    last_follow_up_on: date | None
    goals_met: bool
    data_areas: tuple[DataArea, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveDelivered:
    """R9.4: a package was delivered to the archive inbox (not yet verified by the archive)."""

    event_id: str
    package_id: str
    citizen_key: str
    case_count: int
    case_types: tuple[str, ...]
    programmes: tuple[str, ...]
    period_start: date
    period_end: date
    payload_oxum: str
    delivered_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveReceipt:
    """R7.2/R9.4: the archive verified the package's checksums; only now may archived data be deleted."""

    receipt_id: str
    package_id: str
    citizen_key: str
    tagmanifest_sha256: str
    payload_oxum: str
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveRejected:
    """R9.4: the archive could not verify the package; nothing archived may be deleted."""

    rejection_id: str
    package_id: str
    citizen_key: str
    reason: str
    rejected_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveRetry:
    """R7.2: deliver the package again (the worker's backoff timer, or an operator after a rejection)."""

    retry_id: str
    package_id: str
    citizen_key: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletionCompleted:
    """R7.1/R8: the citizen's data (or one record) is deleted; reports the deletion (R7.3)."""

    event_id: str
    citizen_key: str
    package_id: str | None
    rule: str
    areas: tuple[str, ...]
    archived: bool
    completed_at: datetime


register_record(ArchivedCase, f"{OUT_NAMESPACE}.ArchivedCase")
register_record(ArchiveDelivered, f"{OUT_NAMESPACE}.ArchiveDelivered")
register_record(ArchiveReceipt, f"{OUT_NAMESPACE}.ArchiveReceipt")
register_record(ArchiveRejected, f"{OUT_NAMESPACE}.ArchiveRejected")
register_record(ArchiveRetry, f"{OUT_NAMESPACE}.ArchiveRetry")
register_record(DeletionCompleted, f"{OUT_NAMESPACE}.DeletionCompleted")
