"""The door hands its decoded events to the citizen step of the same process (issue 12, "one
decode per event"): the step takes an event only for exactly the bytes the door sealed, for the
same citizen, while the key that sealed them is held; anything else is opened and decoded as
before. Pure: the real CitizenStep, Sealer, KeyStore and outputs, an in-memory producer."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import date, timedelta
from typing import Any

from processors.events import CaseCreated, Event
from processors.model import CitizenState
from processors.reference import E307_CITIZEN_ERASED
from schemas.codec import Codec
from sinks.crypto import MasterKey
from sinks.kafka_out import KafkaOutputs
from streams.citizen_repo import Citizen, CitizenRepository
from streams.citizen_step import CitizenStep
from streams.crash_points import CrashPoints
from streams.dead_letters import DeadLetters
from streams.deadlines import DeadlineIndex
from streams.handoff import HANDOFF_EVENTS, ROOM_WAIT_S, DecodedHandOff
from streams.keystore import KeyStore
from streams.metrics import Metrics
from streams.outbox import KafkaSender
from streams.pseudonym import citizen_key
from streams.saga import SagaRunner
from streams.sealing import Sealer
from streams.settings import DEV_PSEUDONYM_KEY
from tests.recording_producer import RecordingProducer
from tests.streams.test_archive_answer_letters import NOW, TOPIC, Clock
from tests.streams.test_dead_letter_keys import Msg
from tests.synthetic import synthetic_cpr

EVENTS = "dfdg.internal.citizen-events"
CPR = synthetic_cpr(random.Random("handoff"))
OWNER = citizen_key(DEV_PSEUDONYM_KEY, CPR)


def _case(n: int) -> CaseCreated:
    return CaseCreated(event_id=str(uuid.UUID(int=n)), occurred_at=NOW, producer="tests", cpr=CPR, case_id=f"case-{n}",
                       receiving_municipality="851", jobcenter_municipality="851", contact_group=18,
                       handover_date=date(2026, 1, 1) + timedelta(days=400))


def _handoff(capacity: int = HANDOFF_EVENTS) -> DecodedHandOff:
    return DecodedHandOff(lambda: {0, 1}, capacity)


def test_an_event_is_taken_once_for_exactly_its_bytes_and_owner() -> None:
    handoff = _handoff()
    event = _case(1)
    handoff.leave(0, "owner-a", b"sealed-1", event)
    assert handoff.take("owner-b", b"sealed-1") is None  # the same bytes under another citizen
    handoff.leave(0, "owner-a", b"sealed-1", event)
    assert handoff.take("owner-a", b"sealed-2") is None
    assert handoff.take("owner-a", b"sealed-1") is event
    assert handoff.take("owner-a", b"sealed-1") is None and len(handoff) == 0


def test_only_events_for_the_partitions_this_processs_step_reads_are_kept() -> None:
    handoff = _handoff()
    handoff.leave(2, "o", b"s-1", _case(1))  # another worker's step reads partition 2
    assert len(handoff) == 0


def test_the_bound_drops_the_oldest_events_first() -> None:
    handoff = _handoff(capacity=3)
    for n in range(5):
        handoff.leave(1, "o", f"s-{n}".encode(), _case(n))
    assert len(handoff) == 3
    assert handoff.take("o", b"s-0") is None and handoff.take("o", b"s-1") is None
    assert isinstance(handoff.take("o", b"s-4"), CaseCreated)


async def test_the_door_waits_for_room_while_the_step_takes_events() -> None:
    handoff = _handoff(capacity=4)
    for n in range(4):
        handoff.leave(0, "o", f"s-{n}".encode(), _case(n))
    door = asyncio.create_task(handoff.room_for(2))
    await asyncio.sleep(0.05)
    assert not door.done()
    handoff.take("o", b"s-0")
    await asyncio.sleep(0.05)
    assert not door.done()  # one taken: still no room for two
    handoff.take("o", b"s-1")
    await asyncio.wait_for(door, 1.0)
    await asyncio.wait_for(handoff.room_for(2), 0.05)  # room: no wait


async def test_a_step_that_takes_nothing_holds_the_door_back_once_only() -> None:
    """A step that is recovering, or whose partitions moved, takes nothing: the door waits
    ROOM_WAIT_S once, then passes its batches on (the oldest entries are dropped) until the
    step takes an event again."""
    handoff = _handoff(capacity=2)
    for n in range(2):
        handoff.leave(0, "o", f"s-{n}".encode(), _case(n))
    started = time.monotonic()
    await handoff.room_for(1)
    assert time.monotonic() - started >= ROOM_WAIT_S * 0.9
    started = time.monotonic()
    await handoff.room_for(1)
    assert time.monotonic() - started < ROOM_WAIT_S / 2
    handoff.leave(0, "o", b"s-2", _case(2))
    handoff.take("o", b"s-2")  # the step takes again: the door waits for it again
    handoff.leave(0, "o", b"s-3", _case(3))
    handoff.leave(0, "o", b"s-4", _case(4))
    waiting = asyncio.create_task(handoff.room_for(1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    handoff.take("o", b"s-3")
    await asyncio.wait_for(waiting, 1.0)


async def test_a_step_that_takes_slowly_holds_the_door_back_at_most_room_wait_s_in_all() -> None:
    handoff = _handoff(capacity=20)
    for n in range(20):
        handoff.leave(0, "o", f"s-{n}".encode(), _case(n))

    async def trickle() -> None:
        for n in range(20):
            await asyncio.sleep(ROOM_WAIT_S / 4)
            handoff.take("o", f"s-{n}".encode())

    step = asyncio.create_task(trickle())
    started = time.monotonic()
    await handoff.room_for(10)
    assert time.monotonic() - started < ROOM_WAIT_S * 1.5
    step.cancel()


def test_the_held_bytes_are_bounded_and_an_oversized_event_is_not_held() -> None:
    handoff = DecodedHandOff(lambda: {0}, capacity=1000, max_bytes=64 * 100)
    for n in range(10):
        handoff.leave(0, "o", bytes([n]) * 90, _case(n))
    assert len(handoff) == 10 and handoff.held_bytes == 900
    for n in range(10, 100):
        handoff.leave(0, "o", bytes([n]) * 90, _case(n))
    assert handoff.held_bytes <= 64 * 100 and len(handoff) == 71
    assert handoff.take("o", bytes([0]) * 90) is None  # the oldest went first
    handoff.leave(0, "o", b"x" * 101, _case(1))  # over a 64th of the bound: the step opens it
    assert handoff.take("o", b"x" * 101) is None


async def test_a_partition_the_step_no_longer_reads_loses_its_entries_before_the_next_batch() -> None:
    read = {0, 1}
    handoff = DecodedHandOff(lambda: read)
    handoff.leave(0, "o", b"s-0", _case(0))
    handoff.leave(1, "o", b"s-1", _case(1))
    read.discard(1)  # revoked: nothing will take partition 1's entries here
    await handoff.room_for(1)
    assert len(handoff) == 1 and handoff.take("o", b"s-1") is None


class _ReadyKeyStore(KeyStore):
    """Its topic holds nothing it has not read: every key it knows of, it made."""

    async def ready(self) -> None:
        return None

    async def _read_to_now(self) -> None:
        return None


class _CountingCodec:
    """The real codec, counting the records it decodes."""

    def __init__(self) -> None:
        self._codec = Codec.default()
        self.decoded = 0

    def decode(self, value: bytes) -> Any:
        self.decoded += 1
        return self._codec.decode(value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codec, name)


def _rig(handoff: DecodedHandOff, rows: dict[bytes, bytes] | None = None
         ) -> tuple[CitizenStep, Sealer, _CountingCodec, RecordingProducer]:
    async def send_key_row(topic: str, row: bytes, value: bytes | None) -> None:
        return None

    async def topic_exists(topic: str) -> None:
        return None

    keys = _ReadyKeyStore("unused:9092", "keys", MasterKey(MasterKey.DEV_KEY), send=send_key_row)
    sealer, codec, metrics, crash = Sealer(keys, dev_mode=True), _CountingCodec(), Metrics(), CrashPoints("")
    producer = RecordingProducer()
    sender = KafkaSender(producer, 1_000_000)
    outputs = KafkaOutputs(codec, lambda t, k, v, h: sender.send(t, k, v, h), topic_exists)  # type: ignore[arg-type]
    step = CitizenStep(CitizenRepository({} if rows is None else rows, sealer), sealer, codec, outputs,  # type: ignore[arg-type]
                       DeadLetters(sender, sealer, metrics, "dfdg"),
                       SagaRunner(None, sender, codec, sealer, None, metrics, crash),  # type: ignore[arg-type]
                       DeadlineIndex(), metrics, Clock(), TOPIC, crash, handoff)
    return step, sealer, codec, producer


async def _passed_on(sealer: Sealer, handoff: DecodedHandOff, event: Event) -> Msg:
    """What the door does with an admitted event (seal the publisher's bytes and key, leave the
    event), as the step then reads it from the citizen-events topic."""
    raw = Codec.default().encode(event)
    await sealer.keys.ensure([OWNER])
    sealed = await sealer.seal_event(OWNER, raw)
    origin = await sealer.origin_headers_for(OWNER, Msg("dfdg.case-created", 0, 5, b"publisher-key", raw))
    handoff.leave(0, OWNER, sealed, event)
    return Msg(EVENTS, 0, 0, OWNER.encode(), sealed, origin)


def _notified(producer: RecordingProducer) -> list[str]:
    return [topic for topic, *_ in producer.sent if topic.startswith("dfdg.notify.")]


async def test_r1_the_step_acts_on_the_handed_over_event_without_decoding_it_again() -> None:
    handoff = _handoff()
    step, sealer, codec, producer = _rig(handoff)
    msg = await _passed_on(sealer, handoff, _case(1))
    await step.handle(0, [msg])
    assert codec.decoded == 0 and len(handoff) == 0
    assert _notified(producer)  # the case was handled: its jobcentre was told


async def test_r1_bytes_the_door_of_this_process_did_not_hand_over_are_opened_and_decoded() -> None:
    handoff = _handoff()
    step, sealer, codec, producer = _rig(handoff)
    msg = await _passed_on(sealer, handoff, _case(1))
    handoff.take(OWNER, msg.value)  # dropped (the bound), or sealed by a door in another process
    await step.handle(0, [msg])
    assert codec.decoded == 1 and _notified(producer)


async def test_r7_3_an_event_handed_over_before_the_citizens_key_was_shredded_is_refused_as_unreadable() -> None:
    """The door sealed it while the key existed; by the time the step reads it the citizen has
    been deleted. The open would fail (E307); the hand-off must not let it act instead."""
    handoff, rows = _handoff(), dict[bytes, bytes]()
    step, sealer, _, producer = _rig(handoff, rows)
    msg = await _passed_on(sealer, handoff, _case(1))
    # The saga deletes the citizen (the row becomes the erased marker) and shreds the keys.
    await CitizenRepository(rows, sealer).save(Citizen(OWNER, 0, CitizenState(citizen_key=OWNER), erased=True))
    await sealer.shred(OWNER)
    await step.handle(0, [msg])
    codes = [dict(headers).get("dlq.error.code") for topic, _, _, headers in producer.sent
             if topic == "dfdg.dead-letter"]
    assert codes == [E307_CITIZEN_ERASED.encode()]
    assert not _notified(producer)


async def test_r1_the_door_leaves_what_it_admitted_and_the_step_takes_it_from_the_record_it_reads() -> None:
    """The real door and step of one process: the door passes a published CaseCreated on; the
    step, given the record as Kafka would hand it back, acts on it without decoding it again."""
    from streams.door import Door

    handoff = _handoff()
    step, sealer, codec, producer = _rig(handoff)
    metrics, sender = Metrics(), KafkaSender(producer, 1_000_000)
    door = Door(codec, sealer, sender, DeadLetters(sender, sealer, metrics, "dfdg"), metrics,  # type: ignore[arg-type]
                Clock(), DEV_PSEUDONYM_KEY, EVENTS, handoff)
    published = _case(7)
    await door.handle([Msg("dfdg.case-created", 0, 3, b"publisher-key", Codec.default().encode(published))])
    decoded_by_the_door = codec.decoded
    ((partition, key, sealed, headers),) = [(p, k, v, h) for t, k, v, h, p in producer.records if t == EVENTS]
    assert key == OWNER.encode() and len(handoff) == 1
    await step.handle(partition, [Msg(EVENTS, partition, 0, key, sealed, headers)])
    assert codec.decoded == decoded_by_the_door == 1  # the door's decode only
    assert len(handoff) == 0 and _notified(producer)


async def test_r7_3_shredding_a_citizen_drops_their_decoded_events_from_memory() -> None:
    """What the hand-off holds is personal data in clear: a citizen's entries go when their keys
    are shredded here, whether or not the step would still have taken them."""
    handoff = _handoff()
    _, sealer, _, _ = _rig(handoff)
    sealer.forget_on_shred(handoff.forget)
    msg = await _passed_on(sealer, handoff, _case(1))
    handoff.leave(0, "someone-else", b"sealed-for-someone-else", _case(2))
    await sealer.shred(OWNER)
    assert handoff.take(OWNER, msg.value) is None
    assert len(handoff) == 1 and handoff.take("someone-else", b"sealed-for-someone-else") is not None
