"""R7.3 with the door in a process of its own: a door that had read a deleted citizen's key
tombstones but not yet their erased row can make them a new data key and seal a new event with
it. The citizen step, whose row says the citizen is erased, refuses the event (E301) and shreds
that key again, so the event and its dead letter are unreadable like the rest of their data.
Pure: the real CitizenStep, repository and key store, a producer that records."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from processors.events import JobseekerRegistered
from schemas.codec import Codec
from sinks.crypto import MasterKey
from streams.citizen_rows import RowHeader, encode_row
from streams.keystore import ERASED_ROW, KeyStore
from streams.outbox import KafkaSender
from streams.sealing import Sealer
from tests.recording_producer import RecordingProducer
from tests.streams.test_citizen_positions import _rig
from tests.streams.test_dead_letter_keys import Msg
from tests.synthetic import synthetic_cpr

KEYS = "dfdg.internal.citizen-keys"
EVENTS = "dfdg.internal.citizen-events"
CITIZEN = "e" * 64


async def test_r7_3_a_key_made_for_a_deleted_citizen_is_shredded_by_the_step() -> None:
    producer = RecordingProducer()
    sender = KafkaSender(producer, 1_000_000)
    keys = KeyStore("unused:9092", KEYS, MasterKey(MasterKey.DEV_KEY),
                    send=lambda topic, row, wrapped: sender.send(topic, row, wrapped, first=True))
    keys._loaded.set()  # nothing to read: the key topic is this test's producer
    sealer = Sealer(keys, dev_mode=True)
    step, _, rows = _rig(producer, sealer)
    rows[CITIZEN.encode()] = encode_row(RowHeader(1, (), erased=True), b"")
    # What the door did: a new key (its row acknowledged), the event sealed with it.
    await keys.ensure([CITIZEN])
    event = JobseekerRegistered(event_id="ev-after-death", occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
                                producer="jobnet", cpr=synthetic_cpr(random.Random("r7-3-race")), name="Test Person",
                                registration_date=date(2026, 3, 1), municipality="851", benefit_category="DP",
                                unemployment_degree=1.0)
    sealed = await sealer.seal_event(CITIZEN, Codec.default().encode(event))
    made = keys.known(CITIZEN)
    assert made is not None
    await step.handle(1, [Msg(EVENTS, 1, 5, CITIZEN.encode(), sealed)])
    codes = [dict(h).get("dlq.error.code", b"").decode() for t, _, _, h, _ in producer.records
             if t.endswith("dead-letter")]
    assert codes and codes[0].startswith("E301")
    key_rows = [(k, v) for t, k, v, _, _ in producer.records if t == KEYS]
    assert (f"{CITIZEN}:{made.key_id.hex()}".encode(), None) in key_rows  # the tombstone
    assert (f"{CITIZEN}:{ERASED_ROW}".encode(), ERASED_ROW.encode()) in key_rows
    assert keys.all_for(CITIZEN) == []
