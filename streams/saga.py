"""The shell around the archive-then-delete saga (R7, R8, R9.4): runs the pure actions of
``processors.deceased`` against the worker's tables, the archive inbox and Kafka.

Every step runs on the citizen's own partition: the saga lives in the ``archive-sagas`` table,
co-partitioned with the citizen events, and the archive's receipts arrive on
``dfdg.archive-receipts`` keyed by the citizen key with the same partition count. The saga is
persisted after each transition, so a crash resumes from the last step written (R7.2): a
``delivered`` saga waits for its receipt, a redelivery writes the same package id (a no-op).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import faust

import schemas.archive_records  # noqa: F401 - registers the records the codec encodes
from processors.archival import build_package_content
from processors.deceased import (
    Action,
    ArchiveSaga,
    AwaitReceipt,
    BuildAndDeliver,
    DeleteArchived,
    DeleteNow,
    EmitDeletionCompleted,
    RaiseAlert,
    delete_areas,
    deletion_notice,
    next_actions,
    on_deleted,
    on_delivered,
    on_receipt,
    on_rejection,
    start_saga,
)
from processors.events import CitizenDeceased, Event
from processors.model import CitizenState, DeletionRequested, deterministic_id
from processors.pipeline import Delivery, Outcome
from processors.routing import recipients
from schemas.archive_records import ArchiveReceipt, ArchiveRejected, DeletionCompleted
from schemas.topics import DELETION_COMPLETED, archive_receipts_topic
from sinks.archive_bag import ArchiveSinkError, deliver
from streams.logs import get_logger

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["CRASH_ENV", "SagaShell", "register_agents", "saga_from_json", "saga_to_json"]

log = get_logger("dfdg.saga")
audit = get_logger("dfdg.audit")

# Test hook (R7.2): the worker kills itself at a named point to prove that a crash resumes.
CRASH_ENV = "DFDG_TEST_CRASH_AT"


def saga_to_json(saga: ArchiveSaga) -> bytes:
    """The table value of a saga (no personal data: key, package id, area names, steps)."""
    body = asdict(saga)
    body["date_of_death"] = saga.date_of_death.isoformat()
    return json.dumps(body, separators=(",", ":")).encode()


def saga_from_json(raw: bytes) -> ArchiveSaga:
    body = json.loads(raw)
    body["date_of_death"] = date.fromisoformat(body["date_of_death"])
    body["areas_to_archive"] = tuple(body["areas_to_archive"])
    body["areas_deleted_at_once"] = tuple(body["areas_deleted_at_once"])
    return ArchiveSaga(**body)


class SagaShell:
    """Owns the ``archive-sagas`` table and the receipts topic; called by the pipeline's agents."""

    def __init__(self, pipeline: Pipeline, changelog_config: dict[str, str]) -> None:
        self.p = pipeline
        partitions = pipeline.settings.partitions
        self.sagas = pipeline.app.Table("archive-sagas", partitions=partitions, key_type=bytes, value_type=bytes,
                                        extra_topic_configs=changelog_config)
        self.receipts = pipeline.app.topic(archive_receipts_topic(pipeline.settings.app_id), key_type=bytes,
                                           value_type=bytes,
                                           partitions=partitions)

    # ---- on the citizen-events partition ----

    async def on_outcome(self, cause: Event, outcome: Outcome, now: datetime) -> None:
        """Act on the outcome's deletion requests; resume a saga when its death event is replayed."""
        requests = [o for o in outcome.outputs if isinstance(o, DeletionRequested)]
        key = outcome.state.citizen_key.encode()
        for request in requests:
            if request.scope == "citizen":
                assert isinstance(cause, CitizenDeceased)  # only a death asks to delete a citizen
                await self._start(key, cause, outcome.state, now)
            else:
                await self._record_deleted(key, outcome.state, request)
        if not requests and isinstance(cause, CitizenDeceased) and key in self.sagas:
            # A replay after a crash: the handler sends nothing twice, the saga says what is left.
            await self._run(key, self._load(key), await self.p.load_state(key), now)

    async def _start(self, key: bytes, cause: CitizenDeceased, state: CitizenState, now: datetime) -> None:
        if key in self.sagas:
            saga = self._load(key)
        else:
            saga, _ = start_saga(state, cause, now)
            self._save(key, saga)
            log.info("archive saga started", citizen=_short(key), package_id=saga.package_id,
                     to_archive=len(saga.areas_to_archive), at_once=len(saga.areas_deleted_at_once))
        await self._run(key, saga, state, now)

    async def _run(self, key: bytes, saga: ArchiveSaga, state: CitizenState, now: datetime) -> None:
        try:
            for action in next_actions(saga):
                saga, state = await self._perform(key, action, saga, state, now)
        except _Stop:
            return

    async def _perform(self, key: bytes, action: Action, saga: ArchiveSaga, state: CitizenState,
                       now: datetime) -> tuple[ArchiveSaga, CitizenState]:
        if isinstance(action, BuildAndDeliver):
            content = build_package_content(state, saga.date_of_death)
            try:
                delivery = await asyncio.to_thread(deliver, self.p.settings.archive_inbox, content)
            except (ArchiveSinkError, OSError) as exc:
                # Nothing is deleted and the saga stays pending: a replay of the death retries.
                self.p.metrics.event_out("ArchiveAlert")
                log.error("ALERT archive delivery failed", citizen=_short(key), package_id=saga.package_id,
                          error=type(exc).__name__)
                raise _Stop from exc
            saga = on_delivered(saga)
            self._save(key, saga)
            self.p.metrics.event_out("ArchiveDelivered")
            log.info("archive package delivered", citizen=_short(key), package_id=saga.package_id,
                     written=delivery.written, payload_oxum=delivery.payload_oxum)
            await self._maybe_crash("after-archive-delivery", key)
        elif isinstance(action, DeleteNow | AwaitReceipt):
            # AwaitReceipt: a crash may have come between delivery and the deletion that needs no receipt.
            areas = action.areas if isinstance(action, DeleteNow) else saga.areas_deleted_at_once
            state = await self._delete_now(key, state, areas, saga)
        elif isinstance(action, DeleteArchived):
            pass  # the whole citizen goes with EmitDeletionCompleted, once everyone is told
        elif isinstance(action, EmitDeletionCompleted):
            await self._complete(key, saga, state, action, now)
        elif isinstance(action, RaiseAlert):
            self.p.metrics.event_out("ArchiveAlert")
            log.error("ALERT archive saga needs an operator", citizen=_short(key), package_id=action.package_id,
                      reason=action.reason)
        return saga, state

    async def _delete_now(self, key: bytes, state: CitizenState, areas: tuple[str, ...],
                          saga: ArchiveSaga) -> CitizenState:
        new = delete_areas(state, areas)
        if new != state:
            await self.p.save_state(key, new)
            audit.info("deleted", citizen=_short(key), rule="R7.1", areas=list(areas), package_id=saga.package_id,
                       archived=False, at=_now_iso())
        return new

    async def _complete(self, key: bytes, saga: ArchiveSaga, state: CitizenState, action: EmitDeletionCompleted,
                        now: datetime) -> None:
        # Told before the row goes: ``state.notified`` is the list of whom to tell (R7.3).
        notice = deletion_notice(saga)
        for recipient in recipients(notice, state):
            delivery = Delivery(deterministic_id(notice.notice_id, recipient), recipient, notice)
            # No personal part: the key that would seal it is about to be destroyed; recipients
            # know the citizen by the pseudonymous key of their earlier notifications.
            await self.p.outputs.notify(delivery, state, now, None)
            self.p.metrics.event_out(f"notification:{notice.kind}")
        record = DeletionCompleted(
            event_id=deterministic_id(saga.citizen_key, saga.package_id, "deletion-completed"),
            citizen_key=saga.citizen_key, package_id=saga.package_id, rule="R7.1", areas=action.areas,
            archived=bool(saga.areas_to_archive), completed_at=now)
        await self.p._send(DELETION_COMPLETED, key, self.p.codec.encode(record), self.p.codec.headers_for(record))
        self.p.metrics.event_out("DeletionCompleted")
        self._forget_citizen(key)
        self.p.index.replace_citizen(key.decode(), [])
        # Crypto-shredding: every sealed copy of the citizen's data in Kafka becomes unreadable.
        shredded = await self.p.sealer.shred(key.decode(), state.notified)
        audit.info("deleted", citizen=_short(key), rule="R7.1", areas=list(action.areas), package_id=saga.package_id,
                   archived=bool(saga.areas_to_archive), at=_now_iso(), complete=True, keys_shredded=shredded)
        saga = on_deleted(saga)
        log.info("archive saga completed", citizen=_short(key), package_id=saga.package_id, step=saga.step)

    def _forget_citizen(self, key: bytes) -> None:
        # Every table the worker owns: each ``del`` writes a tombstone to its changelog (R7).
        for table in (self.p.states, self.p.deadlines, self.sagas):
            if key in table:
                del table[key]

    async def _record_deleted(self, key: bytes, state: CitizenState, request: DeletionRequested) -> None:
        # R8.1/R8.2: the retention handler already dropped the record from the state it returned,
        # which ``_persist`` wrote; make sure, then leave an audit line.
        record_id = request.scope
        if record_id in state.records:
            state = delete_areas(state, (f"record/{record_id}",))
            await self.p.save_state(key, state)
        self.p.metrics.event_out(f"RecordDeleted:{request.rule}")
        audit.info("deleted", citizen=_short(key), rule=request.rule, areas=[f"record/{record_id}"],
                   package_id=None, archived=request.archive, at=_now_iso())

    # ---- on the receipts partition (same number, same key: same worker) ----

    async def on_receipt_event(self, event: faust.types.EventT) -> None:
        """A receipt or rejection from the archive: advance the citizen's saga, if this worker has it."""
        msg = event.message
        key: bytes = msg.key or b""
        try:
            outcome = self.p.codec.decode(msg.value)
        except Exception as exc:  # noqa: BLE001 - a bad message must not stop the partition
            log.error("undecodable archive receipt", partition=msg.partition, offset=msg.offset,
                      error=type(exc).__name__)
            return
        if key not in self.sagas:
            return  # another deployment's saga, or one already completed (a repeated receipt)
        saga = self._load(key)
        if isinstance(outcome, ArchiveReceipt):
            advanced = on_receipt(saga, outcome)
        elif isinstance(outcome, ArchiveRejected):
            advanced = on_rejection(saga, outcome.package_id, outcome.reason)
        else:
            return
        if advanced != saga:
            self._save(key, advanced)
            log.info("archive saga advanced", citizen=_short(key), package_id=advanced.package_id,
                     step=advanced.step)
        # Run even when unchanged: a crash after saving "receipted" resumes here on the replay.
        await self._run(key, advanced, await self.p.load_state(key), self.p.clock.now())

    # ---- helpers ----

    def _load(self, key: bytes) -> ArchiveSaga:
        return saga_from_json(self.sagas[key])

    def _save(self, key: bytes, saga: ArchiveSaga) -> None:
        self.sagas[key] = saga_to_json(saga)

    async def _maybe_crash(self, point: str, key: bytes) -> None:
        # "<point>" or "<point>:<citizen key>": the second form crashes on that citizen only, so
        # other citizens' events on a shared cluster cannot set it off early.
        wanted, _, citizen = os.environ.get(CRASH_ENV, "").partition(":")
        if wanted == point and citizen in ("", key.decode()):
            await self.p.app.producer.flush()  # the step just written must survive the crash
            log.warning("test hook: crashing", point=point)
            os.kill(os.getpid(), signal.SIGKILL)


class _Stop(Exception):
    """The saga cannot go on now (the alert is raised); later actions must not run."""


def _short(key: bytes) -> str:
    return key.decode()[:12]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def register_agents(app: Any, shell: SagaShell) -> None:
    """The receipts agent; concurrency 1 for the same reason as every other agent."""

    @app.agent(shell.receipts, concurrency=1, name="archive-receipts")
    async def archive_receipts(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await shell.on_receipt_event(event)
