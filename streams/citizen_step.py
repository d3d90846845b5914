"""The citizen step: one batch of one partition's messages, effects first, state last.

    1. decide   each message in order: open, decode, run the pure processors on the citizen's
                working copy (loaded once per batch), and hand every output to the producer
                (notifications, data-area-closed, refusals, dead letters, key rows, saga records)
    2. effects  wait until the broker has acknowledged every one of them
    3. state    write each touched citizen's row once (state, pending deadlines, saga) to the local
                store and its changelog, with the partition's input positions after the batch,
                and wait for the changelog's acknowledgements
    4. commit   return; the loop commits the batch's offsets to its group (for lag; a restart
                reads on from the positions in the rows, which belong with them)

A crash before 3 replays the batch into the same deterministic ids (a subscriber sees at most a
duplicate it can drop); a crash after 3 replays into rows that already record the effects, and
writes them again, so a row that reached the local store but not the changelog reaches it now.
One bad message never stops the partition: whatever it raises becomes a dead letter for that
message alone, and its citizen's working copy goes back to what it was before it.

The citizen-events topic and the archive-receipts topic arrive in the same batches (same key,
same partition count), so a citizen's row is only ever changed by one step at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from processors.events import CitizenDeceased, Event
from processors.model import DataAreaClosedOut, DeletionRequested, FetchRefused, Rejected
from processors.pipeline import Outcome, process, process_erased, sealed_fields
from processors.reference import E307_CITIZEN_ERASED, E901_PROCESSING_FAILED
from schemas.archive_records import ArchiveReceipt, ArchiveRejected, ArchiveRetry
from schemas.codec import Codec
from sinks.kafka_out import KafkaOutputs
from streams.citizen_repo import Citizen, CitizenRepository
from streams.citizen_rows import state_to_json
from streams.clock import Clock
from streams.crash_points import CrashPoints
from streams.dead_letters import DeadLetters
from streams.deadlines import DeadlineIndex
from streams.handoff import DecodedHandOff
from streams.keystore import KeysUnavailable
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.outbox import Outbox
from streams.saga import SagaRunner
from streams.sealing import Sealer, UnknownKey
from streams.step_policy import MAX_STATE_BYTES

__all__ = ["CitizenStep", "StateTooLarge"]

log = get_logger("dfdg.worker")


class StateTooLarge(ValueError):
    """The event would grow the citizen's row past ``MAX_STATE_BYTES``."""


class CitizenStep:
    def __init__(self, repo: CitizenRepository, sealer: Sealer, codec: Codec, outputs: KafkaOutputs,
                 dead_letters: DeadLetters, saga: SagaRunner, index: DeadlineIndex, metrics: Metrics, clock: Clock,
                 receipts_topic: str, crash: CrashPoints, handoff: DecodedHandOff | None = None) -> None:
        self._repo = repo
        self._sealer = sealer
        self._codec = codec
        self._outputs = outputs
        self._dead_letters = dead_letters
        self._saga = saga
        self._index = index
        self._metrics = metrics
        self._clock = clock
        self._receipts_topic = receipts_topic
        self._crash = crash
        self._handoff = handoff

    async def handle(self, partition: int, messages: Sequence[Any]) -> None:
        started = time.perf_counter()
        now = self._clock.now()
        await self._sealer.keys.ready()
        batch: dict[str, Citizen] = {}
        with Outbox() as box:
            for msg in messages:
                await self._decide(msg, partition, batch, now, box)
            await box.acknowledged()
        touched = [c for c in batch.values() if c.handled]
        for citizen in touched:
            await self._crash.at("after-effects", citizen.key)
        with Outbox() as rows:
            for citizen in touched:
                # The index first: a window move that reads the row after this point skips it,
                # whichever version of it the store then holds (streams.deadlines).
                pending = () if citizen.erased else citizen.state.pending.values()
                self._index.replace_pending(citizen.key, partition, pending, citizen.pending_before)
                await self._repo.save(citizen)
            positions = await self._repo.send_positions(partition, {**self._repo.positions(), **_next(messages)})
            await rows.acknowledged()
            await self._crash.at("after-changelog")
            # The positions before the changelog offset that covers them: the store keeps no
            # log, so after a crash it holds a prefix of its writes (streams.faust_app), and an
            # offset that survived must not have skipped the positions row it restores past.
            self._repo.keep_positions(positions)
            self._repo.persisted(rows)
        for citizen in touched:
            await self._crash.at("after-state", citizen.key)
        self._crash.flushed_until("after-flushed-state", {citizen.key for citizen in touched})
        if messages:
            self._metrics.observe_processing((time.perf_counter() - started) / len(messages))

    async def _decide(self, msg: Any, partition: int, batch: dict[str, Citizen], now: datetime, box: Outbox) -> None:
        key: str = msg.key.decode() if msg.key else ""
        citizen = batch.get(key)
        try:
            if citizen is None:
                # A row that does not decode is poison too: each message for it is dead-lettered.
                citizen = batch[key] = await self._repo.load(key, partition)
        except KeysUnavailable:
            raise  # the broker, not the message: the batch is replayed (streams.bootstrap._crash_only)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the partition
            log.error("citizen row unreadable", partition=msg.partition, offset=msg.offset, citizen=key[:12],
                      error=type(exc).__name__)
            await self._dead_letters.send(msg, key or "unkeyed", E901_PROCESSING_FAILED, _failure_message(exc),
                                          type(exc).__name__, sealed_value=self._sealed(msg))
            return
        before, sent_before = citizen.snapshot(), box.mark()
        try:
            if msg.topic == self._receipts_topic:
                refusal = await self._saga.on_archive_answer(citizen, self._archive_answer(msg), now, box)
                if refusal is not None:
                    # Sealed for its owner like every letter (the topic keeps them for ever); a replay
                    # opens it back onto the receipts topic (dfdg.dead_letter_view).
                    owner = key if refusal.recorded else self._dead_letters.owner_for(msg, None)
                    await self._dead_letters.send(msg, owner, refusal.code, refusal.message, "Refused")
                    if not refusal.recorded:
                        return  # no saga took it: no row, so a mistyped key never becomes a citizen
            else:
                await self._event(msg, citizen, now, box)
            # Written even when nothing changed: after a crash the local store may hold a row
            # whose changelog record never left, and the replay of its batch (a no-op here)
            # is the only chance to send it before a worker restores from the changelog.
            citizen.handled = True
        except KeysUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the partition
            # Neither its state nor its outputs: a half-handled death must not notify anyone.
            batch[key] = before
            box.rollback(sent_before)
            log.error("processing failed", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                      citizen=key[:12], error=type(exc).__name__)
            await self._dead_letters.send(msg, key, E901_PROCESSING_FAILED, _failure_message(exc),
                                          type(exc).__name__, sealed_value=self._sealed(msg))

    def _sealed(self, msg: Any) -> bytes | None:
        """The value as the door sealed it, or None for an archive answer (it came unsealed, so the
        letter seals it for its owner)."""
        return None if msg.topic == self._receipts_topic else (msg.value or b"")

    def _archive_answer(self, msg: Any) -> object:
        answer = self._codec.decode(msg.value)
        if not isinstance(answer, ArchiveReceipt | ArchiveRejected | ArchiveRetry):
            raise TypeError("not an archive receipt, rejection or retry")
        return answer

    async def _event(self, msg: Any, citizen: Citizen, now: datetime, box: Outbox) -> None:
        event = self._handed_over(citizen.key, msg.value)
        if event is None:
            try:
                raw = await self._sealer.open_event(citizen.key, msg.value)
            except UnknownKey:
                # The citizen was deleted and the key shredded: nothing of this event can be read.
                self._metrics.event_in("SkippedShredded")
                await self._dead_letters.send(msg, citizen.key, E307_CITIZEN_ERASED,
                                              "the citizen has been deleted and its key destroyed, so this event can "
                                              "no longer be read; nothing was done", "UnknownKey",
                                              sealed_value=msg.value)
                return
            decoded = self._codec.decode(raw)
            if not isinstance(decoded, Event):
                raise TypeError("not an event")
            event = decoded
        if citizen.erased or citizen.unreadable:
            outcome = process_erased(citizen.key, event, now)
            await self._emit(msg, citizen, outcome, now)
            if citizen.erased and self._sealer.keys.all_for(citizen.key):
                # R7.3: a door that had read the key tombstones but not yet the erased row (they
                # may sit on different partitions of the key topic) made the dead citizen a new
                # key to seal this event. Shredding it again makes the event, and its dead
                # letter, unreadable like everything else of theirs.
                log.warning("a data key was made for a deleted citizen; shredded", citizen=citizen.key[:12])
                await self._sealer.shred(citizen.key)
            if isinstance(event, CitizenDeceased):
                await self._saga.run(citizen, now, box)  # a replayed death finishes an interrupted saga
            return
        outcome = process(citizen.state, event, now)
        if outcome.state != citizen.state:
            data = state_to_json(outcome.state)
            if len(data) > MAX_STATE_BYTES:
                raise StateTooLarge(f"the citizen's state would be {len(data)} bytes, over {MAX_STATE_BYTES}")
            citizen.state, citizen.encoded = outcome.state, (outcome.state, data)
        await self._emit(msg, citizen, outcome, now)
        deletions = [o for o in outcome.outputs if isinstance(o, DeletionRequested)]
        for request in deletions:
            if request.scope == "citizen" and isinstance(event, CitizenDeceased):
                await self._saga.on_death(citizen, event, now, box)
            elif request.scope != "citizen":
                self._saga.on_record_deleted(citizen, request)
        if not deletions and isinstance(event, CitizenDeceased) and citizen.saga is not None:
            await self._saga.run(citizen, now, box)  # a replayed death: the saga says what is left

    def _handed_over(self, owner: str, value: bytes | None) -> Event | None:
        """What the door of this process decoded these bytes to (streams.handoff), while the key
        that sealed them is still held; None: open and decode them."""
        if self._handoff is None or not value:
            return None
        event = self._handoff.take(owner, value)
        if event is None or not self._sealer.holds_key(owner, value):
            return None  # shredded since: the open says so, as for any other message
        return event

    async def _emit(self, msg: Any, citizen: Citizen, outcome: Outcome, now: datetime) -> None:
        state = outcome.state
        for delivery in outcome.deliveries:
            personal = None
            if fields := sealed_fields(delivery, state):
                personal = await self._sealer.seal_personal(state.citizen_key, delivery.recipient,
                                                            delivery.notification_id, fields, citizen.published)
            await self._outputs.notify(delivery, state, now, personal)
            self._metrics.event_out(f"notification:{delivery.notice.kind}")
        for output in outcome.outputs:
            if isinstance(output, DataAreaClosedOut):
                await self._outputs.data_area_closed(output, citizen.key, now)
                self._metrics.event_out("DataAreaClosed")
            elif isinstance(output, FetchRefused):
                await self._outputs.fetch_refused(output, citizen.key, now)
                self._metrics.event_out("FetchRefused")
            elif isinstance(output, Rejected):
                await self._dead_letters.send(msg, citizen.key, output.code, output.reason, "Rejected",
                                              sealed_value=msg.value)
            elif isinstance(output, DeletionRequested):
                self._metrics.event_out(f"DeletionRequested:{output.rule}")


def _next(messages: Sequence[Any]) -> dict[str, int]:
    """The next offset to read per topic after ``messages``."""
    after: dict[str, int] = {}
    for msg in messages:
        after[msg.topic] = max(after.get(msg.topic, 0), msg.offset + 1)
    return after


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, StateTooLarge):
        return f"{exc}; the event would make the citizen's row too large to store"
    return (f"the worker could not process this event ({type(exc).__name__}); it is kept here for replay "
            "after a fix")
