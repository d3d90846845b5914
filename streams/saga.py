"""The shell around the archive-then-delete saga (R7, R8, R9.4): performs the pure actions of
``processors.deceased`` on a citizen's working copy (``streams.citizen_repo.Citizen``).

The saga lives in the citizen's own row, so it is written in the same record as the death
that started it: no crash can leave a deceased citizen without a saga. Its effects follow the
step's rule (effects first, state last), with one extra wait at the end: whom to tell about
the deletion is in the sealed state, so those notices are acknowledged before the keys that
seal it are shredded, and the erasure marker is written only after the shredding is. A crash
at any point resumes from the row as it was last written:

    pending    -> the package is delivered again under the same id (the archive inbox keeps one);
                  after a failed delivery, not before its backoff is over (processors.archive_retry),
                  when the watch's timer sends an ArchiveRetry
    delivered  -> waits for the receipt; the receipt is replayed if its batch's rows were not written, and
                  it is trusted only if it names the delivered package's checksum (R7.2); a refused
                  one is dead-lettered (E308), and a receipt that came before the saga (E309) is
                  replayed from its dead letter; failing that, ``dfdg archive retry`` delivers anew
    rejected   -> waits for an operator's ``dfdg archive retry <package>`` (an ArchiveRetry)
    receipted  -> the deletion notices and the record are sent again (same ids), then the shred
    receipted, keys already shredded -> only the shred (idempotent) and the marker are left
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from processors.archival import build_package_content
from processors.archive_retry import (
    DEFAULT_RETRY_POLICY,
    RetryPolicy,
    delivery_allowed,
    on_delivery_failed,
    on_retry_requested,
)
from processors.deceased import (
    ArchiveSaga,
    AwaitReceipt,
    BuildAndDeliver,
    DeleteNow,
    EmitDeletionCompleted,
    RaiseAlert,
    delete_areas,
    deletion_notice,
    next_actions,
    on_deleted,
    on_delivered,
    on_receipt,
    on_receipt_refused,
    on_rejection,
    receipt_refusal,
    start_saga,
)
from processors.events import CitizenDeceased
from processors.model import CitizenState, DeletionRequested, deterministic_id
from processors.pipeline import Delivery
from processors.reference import E308_RECEIPT_MISMATCH, E309_ARCHIVE_ANSWER_UNMATCHED
from processors.routing import recipients
from schemas.archive_records import ArchiveReceipt, ArchiveRejected, ArchiveRetry, DeletionCompleted
from schemas.codec import Codec
from schemas.topics import DELETION_COMPLETED
from sinks.archive_bag import ArchiveSinkError, deliver, delivered_checksum
from sinks.kafka_out import KafkaOutputs
from streams.citizen_repo import Citizen
from streams.crash_points import CrashPoints
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.outbox import KafkaSender, Outbox
from streams.saga_watch import SagaWatch
from streams.sealing import Sealer

__all__ = ["NO_SAGA", "Refusal", "SagaRunner"]

# An answer for a key with no saga: mistyped, or a receipt handled before the replayed death that
# starts the saga (the two topics have no order between them). Replayed, the letter goes back to
# the receipts topic as the archive published it (dfdg.dead_letter_view), and then matches.
NO_SAGA = ("no archive saga is held for its key (unknown or mistyped, or its citizen's death not yet handled); "
           "a receipt or rejection: once the saga exists, replay this letter (dfdg dead-letters replay "
           "--offset <this letter>), which sends it back to the receipts topic")

log = get_logger("dfdg.saga")
audit = get_logger("dfdg.audit")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An archive answer the saga does not act on; the step dead-letters it (code, a message that
    names fields, never values). ``recorded``: the citizen's saga recorded it, so the letter is the
    citizen's and their row is written; otherwise no row is (a mistyped key is no citizen)."""

    code: str
    message: str
    recorded: bool = False


class SagaRunner:
    def __init__(self, outputs: KafkaOutputs, sender: KafkaSender, codec: Codec, sealer: Sealer,
                 archive_inbox: object, metrics: Metrics, crash: CrashPoints, watch: SagaWatch | None = None,
                 retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> None:
        self._outputs = outputs
        self._retry_policy = retry_policy
        # Not ``watch or SagaWatch()``: an empty watch has len 0, so it is falsy, and the runner
        # would fill a private one the timer and the gauges never see.
        self.watch = watch if watch is not None else SagaWatch()
        self._sender = sender
        self._codec = codec
        self._sealer = sealer
        self._inbox = archive_inbox
        self._metrics = metrics
        self._crash = crash

    async def on_death(self, citizen: Citizen, cause: CitizenDeceased, now: datetime, box: Outbox) -> None:
        """A death was recorded (or replayed): start the saga once, then do what is left of it."""
        if citizen.saga is None:
            citizen.saga, _ = start_saga(citizen.state, cause, now)
            log.info("archive saga started", citizen=citizen.key[:12], package_id=citizen.saga.package_id,
                     to_archive=len(citizen.saga.areas_to_archive),
                     at_once=len(citizen.saga.areas_deleted_at_once))
        await self.run(citizen, now, box)

    async def on_archive_answer(self, citizen: Citizen, answer: object, now: datetime,
                                box: Outbox) -> Refusal | None:
        """A receipt, rejection or retry request from the archive side for this citizen's package.

        Returns what the step must dead-letter: an answer that matches no saga (no row is written
        for it), or a refused receipt (the saga records the refusal). An answer that matches but
        changes nothing (a repeat) is logged and counted, never dropped silently."""
        assert isinstance(answer, ArchiveReceipt | ArchiveRejected | ArchiveRetry)  # the step decodes
        saga = citizen.saga
        if answer.citizen_key != citizen.key:
            return Refusal(E309_ARCHIVE_ANSWER_UNMATCHED,
                           f"{type(answer).__name__}: its citizen_key field is not the key it was published under")
        if citizen.erased:
            self._ignored(citizen, answer, "the citizen's saga has completed")  # a repeat after completion
            return None
        if saga is None:
            return Refusal(E309_ARCHIVE_ANSWER_UNMATCHED, f"{type(answer).__name__}: {NO_SAGA}")
        if answer.package_id != saga.package_id:
            return Refusal(E309_ARCHIVE_ANSWER_UNMATCHED,
                           f"{type(answer).__name__}: its package_id field is not the package of the key's saga")
        refusal = None
        if isinstance(answer, ArchiveReceipt):
            advanced, refusal = await self._receipt(citizen, saga, answer)
        elif isinstance(answer, ArchiveRejected):
            advanced = on_rejection(saga, answer.package_id, answer.reason)
        else:
            advanced = on_retry_requested(saga, answer.requested_by, now)
            # Unchanged is not ignored for a pending saga: the run below delivers it.
            if advanced == saga and not (saga.step == "pending" and saga.areas_to_archive):
                self._ignored(citizen, answer, f"nothing to retry in step {saga.step}")
        if advanced != saga:
            citizen.saga = advanced
            log.info("archive saga advanced", citizen=citizen.key[:12], package_id=advanced.package_id,
                     step=advanced.step)
        await self.run(citizen, now, box)
        return refusal

    async def _receipt(self, citizen: Citizen, saga: ArchiveSaga,
                       receipt: ArchiveReceipt) -> tuple[ArchiveSaga, Refusal | None]:
        if saga.step not in ("pending", "delivered", "rejected"):
            self._ignored(citizen, receipt, f"a repeated receipt in step {saga.step}")
            return saga, None
        delivered = saga.delivered_sha256
        if delivered is None:
            # "delivered" was never written (a crash): check against what the inbox holds.
            delivered = await asyncio.to_thread(delivered_checksum, self._inbox, saga.package_id,  # type: ignore[arg-type]
                                                saga.refused_sha256)
        reason = receipt_refusal(saga, receipt, delivered)
        if reason is None:
            return on_receipt(saga, receipt, delivered), None
        # Dead-lettered as well as logged: the archive has moved the bag to received/ and sends no
        # other receipt, so an operator must see it (dfdg dead-letters list) and retry (R7.2).
        self._metrics.event_out("ArchiveReceiptRefused")
        log.error("ALERT archive receipt refused", code=E308_RECEIPT_MISMATCH, citizen=citizen.key[:12],
                  package_id=saga.package_id, receipt_id=receipt.receipt_id, reason=reason)
        message = (f"ArchiveReceipt refused: {reason}; nothing is deleted. After checking the package, "
                   "dfdg archive retry <package> delivers it again")
        refused = on_receipt_refused(saga, reason, receipt.tagmanifest_sha256, delivered)
        return refused, Refusal(E308_RECEIPT_MISMATCH, message, recorded=True)

    def _ignored(self, citizen: Citizen, answer: ArchiveReceipt | ArchiveRejected | ArchiveRetry,
                 reason: str) -> None:
        self._metrics.event_in("ArchiveAnswerIgnored")
        log.warning("archive answer ignored", citizen=citizen.key[:12], answer=type(answer).__name__,
                    package_id=answer.package_id, reason=reason)

    def on_record_deleted(self, citizen: Citizen, request: DeletionRequested) -> None:
        # R8.1/R8.2: the retention handler already dropped the record from the state it returned.
        citizen.state = delete_areas(citizen.state, (f"record/{request.scope}",))
        self._metrics.event_out(f"RecordDeleted:{request.rule}")
        audit.info("deleted", citizen=citizen.key[:12], rule=request.rule, areas=[f"record/{request.scope}"],
                   package_id=None, archived=request.archive, at=_now_iso())

    async def run(self, citizen: Citizen, now: datetime, box: Outbox) -> None:
        try:
            await self._run(citizen, now, box)
        finally:
            self._watch_update(citizen)

    def _watch_update(self, citizen: Citizen) -> None:
        self.watch.update(citizen.key, citizen.partition, citizen.saga, citizen.erased)

    async def _run(self, citizen: Citizen, now: datetime, box: Outbox) -> None:
        saga = citizen.saga
        if saga is None or citizen.erased:
            return
        for action in next_actions(saga):
            if isinstance(action, BuildAndDeliver):
                if not delivery_allowed(saga, now):
                    return  # a failed delivery's backoff is not over; the watch wakes the saga then
                if not await self._deliver(citizen, saga, now):
                    return  # the alert is raised; nothing is deleted, the saga stays pending
            elif isinstance(action, DeleteNow | AwaitReceipt):
                # AwaitReceipt: the areas with no archive obligation go at once, receipt or not.
                areas = action.areas if isinstance(action, DeleteNow) else saga.areas_deleted_at_once
                self._delete_now(citizen, areas, saga)
            elif isinstance(action, EmitDeletionCompleted):
                await self._complete(citizen, saga, action, now, box)
            elif isinstance(action, RaiseAlert):
                self._metrics.event_out("ArchiveAlert")
                log.error("ALERT archive saga needs an operator", citizen=citizen.key[:12],
                          package_id=action.package_id, reason=action.reason)

    async def _deliver(self, citizen: Citizen, saga: ArchiveSaga, now: datetime) -> bool:
        if citizen.unreadable:
            # Recorded as a failed delivery: its retry_at moves on, so the timer tries again after
            # the backoff (one alert an hour at most), not never and not every tick.
            citizen.saga = on_delivery_failed(saga, now, "UnknownKey", self._retry_policy)
            self._metrics.event_out("ArchiveAlert")
            log.error("ALERT archive package cannot be built: the citizen's keys are gone", citizen=citizen.key[:12],
                      package_id=saga.package_id, failures=citizen.saga.failed_deliveries)
            return False
        content = build_package_content(citizen.state, saga.date_of_death)
        try:
            # After a refused receipt (or an operator's retry of a delivered saga) not a received copy
            # the saga will see no receipt for, but any other: a replayed retry writes no third bag.
            delivery = await asyncio.to_thread(deliver, self._inbox, content,  # type: ignore[arg-type]
                                               refused_sha256=saga.refused_sha256)
        except (ArchiveSinkError, OSError) as exc:
            # Retried with capped backoff; the row records when (state after the failed effect).
            citizen.saga = on_delivery_failed(saga, now, type(exc).__name__, self._retry_policy)
            self._metrics.event_out("ArchiveAlert")
            retry_at = citizen.saga.retry_at.isoformat() if citizen.saga.retry_at else None
            log.error("ALERT archive delivery failed", citizen=citizen.key[:12], package_id=saga.package_id,
                      error=type(exc).__name__, failures=citizen.saga.failed_deliveries, retry_at=retry_at)
            return False
        citizen.saga = on_delivered(saga, delivery.tagmanifest_sha256)
        self._metrics.event_out("ArchiveDelivered")
        log.info("archive package delivered", citizen=citizen.key[:12], package_id=saga.package_id,
                 written=delivery.written, payload_oxum=delivery.payload_oxum)
        await self._crash.at("after-archive-delivery", citizen.key)
        return True

    def _delete_now(self, citizen: Citizen, areas: tuple[str, ...], saga: ArchiveSaga) -> None:
        new = delete_areas(citizen.state, areas)
        if new != citizen.state:
            citizen.state = new
            audit.info("deleted", citizen=citizen.key[:12], rule="R7.1", areas=list(areas),
                       package_id=saga.package_id, archived=False, at=_now_iso())

    async def _complete(self, citizen: Citizen, saga: ArchiveSaga, action: EmitDeletionCompleted, now: datetime,
                        box: Outbox) -> None:
        key = citizen.key
        if not citizen.unreadable:
            # Told before the keys go: ``state.notified`` is whom to tell (R7.3), and it is sealed.
            notice = deletion_notice(saga)
            for recipient in recipients(notice, citizen.state):
                delivery = Delivery(deterministic_id(notice.notice_id, recipient), recipient, notice)
                # No personal part: recipients know the citizen by the pseudonymous key.
                await self._outputs.notify(delivery, citizen.state, now, None)
                self._metrics.event_out(f"notification:{notice.kind}")
            record = DeletionCompleted(
                event_id=deterministic_id(saga.citizen_key, saga.package_id, "deletion-completed"),
                citizen_key=saga.citizen_key, package_id=saga.package_id, rule="R7.1", areas=action.areas,
                archived=bool(saga.areas_to_archive), completed_at=now)
            await self._sender.send(DELETION_COMPLETED, key.encode(), self._codec.encode(record),
                                    self._codec.headers_for(record))
            self._metrics.event_out("DeletionCompleted")
            await box.acknowledged()
            await self._crash.at("after-deletion-notices", key)
        # Crypto-shredding: every sealed copy of the citizen's data in Kafka becomes unreadable.
        await self._sealer.shred_recipient_keys(key, citizen.state.notified)
        await box.acknowledged()
        shredded = await self._sealer.shred(key)
        await box.acknowledged()
        await self._crash.at("after-shred", key)
        audit.info("deleted", citizen=key[:12], rule="R7.1", areas=list(action.areas), package_id=saga.package_id,
                   archived=bool(saga.areas_to_archive), at=_now_iso(), complete=True, keys_shredded=shredded)
        citizen.saga = on_deleted(saga)
        citizen.state = CitizenState(citizen_key=key)
        citizen.erased, citizen.unreadable = True, False
        log.info("archive saga completed", citizen=key[:12], package_id=saga.package_id, step=citizen.saga.step)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
