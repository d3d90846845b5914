"""Issue 8, crypto-shredding, against the real broker: after a citizen is deleted (R7), a scan
of every topic the pipeline writes — from the beginning, dead letters and the ``citizens``
table's changelog included — finds no readable CPR or name of that citizen, while another
citizen's data still opens.

A changelog row (``streams.citizen_rows``) is a clear header beside the sealed state: the scan
reads the header in clear and the sealed state as one more sealed copy that must not open."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from dfdg.cmd_archive import kafka_publish, receive_and_publish
from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber_keys import SubscriberKeys
from processors.events import Event
from schemas.topics import INGRESS_TOPICS, citizen_keys_topic
from sinks.crypto import MasterKey, is_sealed, sealed_key_id
from streams.citizen_rows import decode_row
from streams.keystore import KeyStore
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.sealed import citizens_changelog, open_state
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka


def _events(cpr: str, name: str, tag: str) -> list[Event]:
    today = date.today()
    return [
        event_from_json("jobseeker-registered", {
            "cpr": cpr, "name": name, "registration_date": today.isoformat(), "municipality": "751",
            "benefit_category": "DP", "unemployment_degree": 1.0, "akasse": "24"}),
        event_from_json("case-created", {
            "cpr": cpr, "case_id": f"case-{tag}", "receiving_municipality": "751", "jobcenter_municipality": "751",
            "contact_group": 18, "handover_date": (today + timedelta(days=30)).isoformat(), "cv_number": "CV"}),
        # A stateful rejection: its dead letter is sealed with the citizen's key.
        event_from_json("contract-concluded", {"cpr": cpr, "case_id": f"case-{tag}",
                                               "concluded_date": today.isoformat()}),
    ]


async def _publish(bootstrap: str, events: list[Event]) -> None:
    async with Publisher(bootstrap) as publisher:
        for event in events:
            await publisher.publish(event)


async def _all_records(bootstrap: str, skip: set[str]) -> dict[str, list[tuple[bytes | None, bytes | None]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        topics = [t for t in metadata.topics() if t not in skip and not t.startswith("__")]
        tps = [TopicPartition(t, p) for t in topics for p in metadata.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in topics}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                out[tp.topic] += [(r.key, r.value) for r in records]
        return out
    finally:
        await consumer.stop()


async def test_r7_deleted_citizen_is_unreadable_in_every_topic_the_pipeline_writes(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    rng = random.Random(unique)
    gone_cpr, kept_cpr = synthetic_cpr(rng), synthetic_cpr(rng)
    gone_name, kept_name = f"Gone Synthetic {unique}", f"Kept Synthetic {unique}"
    gone, kept = citizen_key(DEV_PSEUDONYM_KEY, gone_cpr), citizen_key(DEV_PSEUDONYM_KEY, kept_cpr)
    app_id, inbox = f"dfdg-shred-{unique}", tmp_path / "inbox"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w", {"DFDG_ARCHIVE_INBOX": str(inbox)}).start()
    try:
        await _publish(bootstrap, _events(gone_cpr, gone_name, f"g{unique}") + _events(kept_cpr, kept_name,
                                                                                         f"k{unique}"))
        worker.wait_for("dead letter", 60, count=2)  # both contracts without a goal (E303) are in
        await _publish(bootstrap, [event_from_json("citizen-deceased", {
            "cpr": gone_cpr, "date_of_death": date.today().isoformat()})])
        deadline = time.monotonic() + 60
        outcomes: list[object] = []
        async with Publisher(bootstrap) as publisher:
            while not outcomes and time.monotonic() < deadline:
                outcomes = await receive_and_publish(inbox, kafka_publish(publisher, app_id=app_id))
                await asyncio.sleep(0.5)
        assert outcomes, "no archive package was delivered:\n" + worker.tail()
        worker.wait_for("archive saga completed", 60)
    finally:
        worker.stop()

    records = await _all_records(bootstrap, skip=set(INGRESS_TOPICS))  # the publishers' own topics
    needles = [s.encode() for s in (gone_cpr, gone_name)]
    for topic, rows in records.items():
        for key, value in rows:
            for needle in needles:
                assert needle not in (key or b"") and needle not in (value or b""), f"readable on {topic}"
    # The citizen's rows in the worker's one table: every state it ever had was sealed, and the
    # latest row is the erasure marker, which holds no sealed state at all.
    table = citizens_changelog(app_id)
    gone_rows = [decode_row(v) for k, v in records[table] if k == gone.encode() and v is not None]
    sealed_states_of_gone = [sealed for header, sealed in gone_rows if not header.erased]
    assert sealed_states_of_gone, f"expected the deleted citizen's earlier states on {table}"
    assert all(is_sealed(sealed) for sealed in sealed_states_of_gone), f"a state on {table} is not sealed"
    last_header, last_sealed = gone_rows[-1]
    assert last_header.erased and last_sealed == b"", "the deleted citizen's latest row is not a bare erasure marker"
    # The keys that could open the sealed copies are gone, for the pipeline and every subscriber.
    store = KeyStore(bootstrap, citizen_keys_topic(app_id), MasterKey(MasterKey.DEV_KEY))
    await store.start()
    try:
        assert store.known(gone) is None and store.known(kept) is not None
        sealed_of_gone = [v for rows in records.values() for k, v in rows
                          if k == gone.encode() and v is not None and is_sealed(v)]
        assert sealed_of_gone, "expected sealed copies of the deleted citizen's data on the topics"
        sealed_of_gone += sealed_states_of_gone
        assert all([await _cannot_open(store, gone, v) for v in sealed_of_gone])
    finally:
        await store.stop()
    for subscriber in ("jobcenter:751", "akasse:24", "benefits:751"):
        keys = SubscriberKeys(bootstrap, subscriber)
        await keys.start()
        try:
            assert keys.known(gone) is None, f"{subscriber} can still open the deleted citizen's notifications"
        finally:
            await keys.stop()
    # The citizen who was not deleted still opens.
    state_rows = [v for k, v in records[table] if k == kept.encode() and v]
    assert state_rows, f"no row of the kept citizen on {table}"
    assert kept_cpr.encode() in await open_state(bootstrap, app_id, kept, state_rows[-1])


async def _cannot_open(store: KeyStore, citizen: str, value: bytes) -> bool:
    from streams.keystore import UnknownKey

    try:
        await store.key_by_id(citizen, sealed_key_id(value))
    except UnknownKey:
        return True
    return False
