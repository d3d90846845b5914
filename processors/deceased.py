"""A citizen's death (R7): the handler and the archive-then-delete saga, as a pure state machine.

The handler records the death, cancels every pending deadline and requests deletion. The shell
then runs the saga: it persists ``ArchiveSaga`` after every transition and performs the actions
``next_actions`` returns, in order. Whatever step a saga was persisted at, ``next_actions`` says
what is still to do, so a crash resumes instead of skipping or repeating work:

    pending    -> build + deliver the package (same package id every time), delete the rest at once
    delivered  -> await the archive's receipt
    receipted  -> delete the archived areas, report the deletion
    deleted    -> nothing
    rejected   -> alert; nothing is deleted until a later delivery is receipted (R7.2)

Data areas are named ``case/<case_id>/<DataArea>``, ``record/<record_id>``, ``registration``,
``absences`` and ``identity`` (the CPR: it goes into the package, so it is deleted with the
archived areas when there are any).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Literal, Protocol

from processors.archival import is_archived, package_id_for
from processors.events import CitizenDeceased, DataArea, Event
from processors.frozen import replace
from processors.model import CitizenState, Decision, DeletionRequested, Notice, PersonalData, deterministic_id

__all__ = [
    "DEADLINE_HANDLERS",
    "HANDLERS",
    "Action",
    "ArchiveSaga",
    "AwaitReceipt",
    "BuildAndDeliver",
    "DeleteArchived",
    "DeleteNow",
    "EmitDeletionCompleted",
    "RaiseAlert",
    "ReceiptLike",
    "SagaStep",
    "classify_areas",
    "delete_areas",
    "deletion_notice",
    "held_areas",
    "next_actions",
    "on_citizen_deceased",
    "on_deleted",
    "on_delivered",
    "on_receipt",
    "on_receipt_refused",
    "on_rejection",
    "receipt_refusal",
    "retry_delivery",
    "start_saga",
    "with_checksum",
]

Handler = Callable[[CitizenState, Event, datetime], Decision]
SagaStep = Literal["pending", "delivered", "receipted", "deleted", "rejected"]


class ReceiptLike(Protocol):
    """What the saga needs from an archive receipt (``schemas.archive_records.ArchiveReceipt`` fits)."""

    @property
    def package_id(self) -> str: ...

    @property
    def tagmanifest_sha256(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ArchiveSaga:
    """Progress of archive-then-delete for one deceased citizen; persisted by the shell after each step."""

    citizen_key: str
    package_id: str
    date_of_death: date
    step: SagaStep = "pending"
    areas_to_archive: tuple[str, ...] = ()
    areas_deleted_at_once: tuple[str, ...] = ()
    receipt_sha256: str | None = None
    rejection_reason: str | None = None
    deliveries: int = 0
    # R7.2: the SHA-256 of the delivered bag's tag manifest; a receipt must name exactly this.
    delivered_sha256: str | None = None
    # When the saga began, so operators see how long it waits (None in rows written before).
    started_at: datetime | None = None
    # Failed deliveries since the last success, the next attempt's time and the last error's type
    # (never its message: that could name a path or a value). See processors.archive_retry.
    failed_deliveries: int = 0
    retry_at: datetime | None = None
    last_error: str | None = None
    # Why the last receipt was refused (a fixed text from ``receipt_refusal``, never a value), until
    # a receipt is accepted or the package is delivered again. The archive's receiver has already
    # moved a receipted bag to ``received/`` and sends no second receipt, so only an operator's
    # retry gets this saga on (``processors.archive_retry.on_retry_requested``), and the delivery it
    # causes writes a fresh bag instead of finding the received one.
    receipt_refused: str | None = None
    # The tag-manifest checksums of bags the archive holds whose receipts this saga will not act on:
    # the one a refused receipt named and the one delivered (E308), and, after an operator's retry of
    # a ``delivered`` saga, the one it had delivered (its receipt was lost, e.g. dead-lettered E309
    # before the saga existed). A redelivery never reuses a copy with one of these, but reuses any other one, so a
    # retry replayed after a crash finds the bag the first attempt wrote instead of writing a third
    # (fastavro's random sync markers make every new bag's checksum differ). Kept until a receipt.
    refused_sha256: tuple[str, ...] = ()


# ---- actions: what the shell must do, in order ----


@dataclass(frozen=True, slots=True)
class DeleteNow:
    """Delete areas without an archive obligation (idempotent: deleting twice is deleting once)."""

    areas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BuildAndDeliver:
    """Build the package from the citizen's state and deliver it; a no-op if already delivered."""

    package_id: str


@dataclass(frozen=True, slots=True)
class AwaitReceipt:
    """Nothing to do until the archive's receipt (or rejection) for this package arrives."""

    package_id: str


@dataclass(frozen=True, slots=True)
class DeleteArchived:
    """Delete areas whose delivery the archive has receipted."""

    areas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EmitDeletionCompleted:
    """Report the deletion: a DeletionCompleted record and ``deletion_notice`` (R7.3)."""

    package_id: str
    areas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """Operators must act (e.g. the archive rejected the package)."""

    package_id: str
    reason: str


Action = DeleteNow | BuildAndDeliver | AwaitReceipt | DeleteArchived | EmitDeletionCompleted | RaiseAlert


# ---- data areas ----


def held_areas(state: CitizenState) -> tuple[str, ...]:
    """Every data area still held for the citizen, in a stable order."""
    areas = [f"case/{case_id}/{area.value}" for case_id in sorted(state.cases) for area in DataArea]
    areas += [f"record/{record_id}" for record_id in sorted(state.records)]
    if state.registered_jobseeker or state.personal.name or state.akasse or state.municipality:
        areas.append("registration")
    if state.absences:
        areas.append("absences")
    if state.personal.cpr:
        areas.append("identity")
    return tuple(areas)


def classify_areas(state: CitizenState) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split held areas into (to archive first, delete at once) by the R9 case rules."""
    archived_cases = {case_id for case_id, case in state.cases.items() if is_archived(case)}
    to_archive: list[str] = []
    at_once: list[str] = []
    for area in held_areas(state):
        parts = area.split("/")
        archived = parts[0] == "case" and parts[1] in archived_cases
        # The package names whose cases these are, so the CPR leaves with the archived areas.
        archived = archived or (area == "identity" and bool(archived_cases))
        (to_archive if archived else at_once).append(area)
    return tuple(to_archive), tuple(at_once)


def delete_areas(state: CitizenState, areas: tuple[str, ...]) -> CitizenState:
    """The state without ``areas``. Keeps the key, ``notified``, ``fired`` and ``deceased_on``: the
    deletion must still be reported to everyone told about the citizen (R7.3)."""
    gone = set(areas)
    cases = {k: c for k, c in state.cases.items() if not all(f"case/{k}/{a.value}" in gone for a in DataArea)}
    records = {k: r for k, r in state.records.items() if f"record/{k}" not in gone}
    new = replace(
        state,
        cases=MappingProxyType(cases),
        records=MappingProxyType(records),
        record_details=MappingProxyType({k: v for k, v in state.record_details.items() if k in records}),
        absences=MappingProxyType({}) if "absences" in gone else state.absences,
    )
    if "registration" in gone:
        new = replace(
            new,
            akasse=None,
            municipality=None,
            registered_jobseeker=False,
            personal=replace(new.personal, name=None),
        )
    if "identity" in gone:
        new = replace(new, personal=PersonalData(cpr=None, name=new.personal.name))
    return new


# ---- the handler ----


def on_citizen_deceased(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R7.1/R7.3: record the death, cancel all pending deadlines, tell everyone notified, request deletion."""
    assert isinstance(event, CitizenDeceased)  # dispatch guarantees the type
    if state.deceased_on is not None or event.event_id in state.fired:
        return Decision(state)  # a repeated death report changes nothing and sends nothing
    to_archive, _ = classify_areas(state)
    new_state = replace(
        state,
        deceased_on=event.date_of_death,
        pending=MappingProxyType({}),
        fired=state.fired | {event.event_id},
    )
    notice = Notice(
        notice_id=deterministic_id(state.citizen_key, event.event_id, "citizen-deceased"),
        kind="citizen-deceased",
        cause_event_id=event.event_id,
        cause_type="CitizenDeceased",
        details=MappingProxyType({"date_of_death": event.date_of_death.isoformat()}),
    )
    deletion = DeletionRequested(
        output_id=package_id_for(state.citizen_key, event.date_of_death),
        rule="R7.1",
        scope="citizen",
        archive=bool(to_archive),
    )
    return Decision(new_state, outputs=(notice, deletion), cancel_deadlines=tuple(sorted(state.pending)))


# ---- the saga ----


def start_saga(state: CitizenState, event: CitizenDeceased, now: datetime) -> tuple[ArchiveSaga, tuple[Action, ...]]:
    """A new saga for a death (call with the state the handler returned) and its first actions."""
    to_archive, at_once = classify_areas(state)
    saga = ArchiveSaga(
        citizen_key=state.citizen_key,
        package_id=package_id_for(state.citizen_key, event.date_of_death),
        date_of_death=event.date_of_death,
        areas_to_archive=to_archive,
        areas_deleted_at_once=at_once,
        started_at=now,
    )
    return saga, next_actions(saga)


def next_actions(saga: ArchiveSaga) -> tuple[Action, ...]:
    """What is still to do for a saga persisted at its current step (the resume point after a crash)."""
    if saga.step == "pending":
        actions: list[Action] = []
        if saga.areas_to_archive:
            # Built before anything is deleted: the package is made from the state as held.
            actions.append(BuildAndDeliver(saga.package_id))
        if saga.areas_deleted_at_once:
            actions.append(DeleteNow(saga.areas_deleted_at_once))
        if not saga.areas_to_archive:
            actions.append(EmitDeletionCompleted(saga.package_id, saga.areas_deleted_at_once))
        return tuple(actions)
    if saga.step == "delivered":
        return (AwaitReceipt(saga.package_id),)
    if saga.step == "receipted":
        every_area = saga.areas_deleted_at_once + saga.areas_to_archive
        return (DeleteArchived(saga.areas_to_archive), EmitDeletionCompleted(saga.package_id, every_area))
    if saga.step == "rejected":
        return (RaiseAlert(saga.package_id, saga.rejection_reason or "archive rejected the package"),)
    return ()


def on_delivered(saga: ArchiveSaga, tagmanifest_sha256: str) -> ArchiveSaga:
    """The package was delivered (or found already delivered) with this tag-manifest checksum.
    Only moves a pending saga; the checksum is what a receipt must match (R7.2)."""
    if saga.step != "pending" or not saga.areas_to_archive:
        return saga
    return replace(saga, step="delivered", deliveries=saga.deliveries + 1, delivered_sha256=tagmanifest_sha256,
                   failed_deliveries=0, retry_at=None, last_error=None, receipt_refused=None)


def receipt_refusal(saga: ArchiveSaga, receipt: ReceiptLike, delivered_sha256: str | None = None) -> str | None:
    """Why a receipt for this saga's package cannot be trusted, or None when it can (R7.2).

    A receipt is trusted only when it names the checksum of the package that was delivered:
    the saga's own record of it, or, for a saga whose "delivered" step a crash kept from being
    written, ``delivered_sha256`` as the shell reads it from the delivered package."""
    known = saga.delivered_sha256 or delivered_sha256
    if known is None:
        return "no delivered package is known to compare the receipt's checksum with"
    if receipt.tagmanifest_sha256 != known:
        return "the receipt's tag-manifest checksum does not match the delivered package's"
    return None


def on_receipt(saga: ArchiveSaga, receipt: ReceiptLike, delivered_sha256: str | None = None) -> ArchiveSaga:
    """A verified receipt for this package: the archived areas may now be deleted (R7.2).

    Accepted while pending too: a crash after delivery but before ``on_delivered`` was persisted
    must not make the saga wait for a receipt it already has; the shell then passes the delivered
    package's checksum. A receipt whose checksum does not match is refused: the saga keeps waiting."""
    if receipt.package_id != saga.package_id or not saga.areas_to_archive:
        return saga
    if saga.step not in ("pending", "delivered", "rejected"):
        return saga
    if receipt_refusal(saga, receipt, delivered_sha256) is not None:
        return saga
    return replace(saga, step="receipted", receipt_sha256=receipt.tagmanifest_sha256, rejection_reason=None,
                   delivered_sha256=saga.delivered_sha256 or delivered_sha256, retry_at=None, receipt_refused=None,
                   refused_sha256=())


def on_receipt_refused(saga: ArchiveSaga, reason: str, refused_sha256: str | None = None,
                       delivered_sha256: str | None = None) -> ArchiveSaga:
    """A receipt for this package was refused (``receipt_refusal``): nothing is deleted, and the saga
    remembers why, so an operator's retry delivers the package again (R7.2). Both the checksum the
    receipt named and the delivered one's (the saga's, or ``delivered_sha256`` as the shell read it)
    are bags the archive has received and will not receipt again: the retry reuses neither."""
    if saga.step not in ("pending", "delivered", "rejected") or not saga.areas_to_archive:
        return saga
    refused = with_checksum(saga.refused_sha256, refused_sha256)
    return replace(saga, receipt_refused=reason,
                   refused_sha256=with_checksum(refused, saga.delivered_sha256 or delivered_sha256))


def with_checksum(checksums: tuple[str, ...], checksum: str | None) -> tuple[str, ...]:
    """``checksums`` with ``checksum`` added once (order kept: the same inputs, the same row)."""
    return checksums if not checksum or checksum in checksums else (*checksums, checksum)


def on_rejection(saga: ArchiveSaga, package_id: str, reason: str) -> ArchiveSaga:
    """The archive rejected the package: nothing archived is deleted; operators are alerted."""
    if package_id != saga.package_id or saga.step not in ("pending", "delivered"):
        return saga  # a receipted package stays receipted
    return replace(saga, step="rejected", rejection_reason=reason)


def retry_delivery(saga: ArchiveSaga) -> ArchiveSaga:
    """After a rejection is dealt with (an operator's ``dfdg archive retry``): deliver again, under
    the same package id, at once."""
    if saga.step != "rejected":
        return saga
    return replace(saga, step="pending", delivered_sha256=None, failed_deliveries=0, retry_at=None, last_error=None)


def on_deleted(saga: ArchiveSaga) -> ArchiveSaga:
    """The deletion actions of the current step were performed. Never reaches ``deleted`` with
    archived areas that have no receipt."""
    if saga.step == "receipted" or (saga.step == "pending" and not saga.areas_to_archive):
        return replace(saga, step="deleted")
    return saga


def deletion_notice(saga: ArchiveSaga) -> Notice:
    """R7.3: the one notice sent after the death notice; routed to everyone in ``state.notified``."""
    return Notice(
        notice_id=deterministic_id(saga.citizen_key, saga.package_id, "citizen-deleted"),
        kind="citizen-deleted",
        cause_event_id=saga.package_id,
        cause_type="ArchiveSaga",
        details=MappingProxyType(
            {"date_of_death": saga.date_of_death.isoformat(), "archived": str(bool(saga.areas_to_archive)).lower()}
        ),
    )


HANDLERS: Mapping[type[Event], Handler] = MappingProxyType({CitizenDeceased: on_citizen_deceased})
DEADLINE_HANDLERS: Mapping[str, Handler] = MappingProxyType({})
