"""Issue 13, point 4, against the real broker: a webhook delivery held for replay is sealed for
its citizen with the subscriber's key, so once the citizen has actually been deleted (the
archive saga completed and the subscriber's key rows tombstoned) the held body cannot be
opened, and ``dfdg webhooks replay`` sends nothing for it and says so, while another citizen's
held delivery still goes out."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from dfdg.cmd_archive import kafka_publish, receive_and_publish
from dfdg.groups import start_group_at_end
from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import read_topic
from dfdg.subscriber_keys import SubscriberKeys
from dfdg.webhook_runner import WebhookRunner, group_for
from processors.routing import topic_for_subscriber
from processors.subscribers import Registry
from sinks import registry_store
from sinks.webhook_retry import RetryPolicy
from sinks.webhook_store import FailedDeliveryStore
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr
from tests.webhook_receiver import SECRET, Receiver
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

SUBSCRIBER = "jobcenter:851"


async def _until(check: Callable[[], Awaitable[bool]], what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + 60
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.tail()}"
        await asyncio.sleep(0.3)


async def _case(publisher: Publisher, cpr: str, case_id: str) -> None:
    await publisher.publish(event_from_json("case-created", {
        "cpr": cpr, "case_id": case_id, "receiving_municipality": "851", "jobcenter_municipality": "851",
        "contact_group": 27, "handover_date": (date.today() + timedelta(days=30)).isoformat(), "cv_number": "CV"}))


async def _subscriber_knows(bootstrap: str, citizen: str) -> bool:
    keys = SubscriberKeys(bootstrap, SUBSCRIBER)
    await keys.start()
    try:
        return keys.known(citizen) is not None
    finally:
        await keys.stop()


async def test_after_the_citizens_deletion_held_webhook_deliveries_cannot_be_opened_and_replay_sends_nothing(
        bootstrap: str, unique: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(unique)
    gone_cpr, kept_cpr = synthetic_cpr(rng), synthetic_cpr(rng)
    gone, kept = citizen_key(DEV_PSEUDONYM_KEY, gone_cpr), citizen_key(DEV_PSEUDONYM_KEY, kept_cpr)
    reg, held = tmp_path / "subscribers.json", tmp_path / "held"
    monkeypatch.setenv("DFDG_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv(registry_store.ENV_VAR, str(reg))  # the worker makes the topic, replay finds the endpoint
    registry_store.save(Registry().add(SUBSCRIBER, receiver.url, "env:DFDG_TEST_WEBHOOK_SECRET"), reg)
    app_id, inbox = f"dfdg-spool-{unique}", tmp_path / "inbox"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w", {"DFDG_ARCHIVE_INBOX": str(inbox)}).start()
    try:
        topic = topic_for_subscriber(SUBSCRIBER)
        await start_group_at_end(bootstrap, group_for(SUBSCRIBER), [topic])  # only this test's notifications
        async with Publisher(bootstrap) as publisher:
            await _case(publisher, gone_cpr, f"g-{unique}")
            await _case(publisher, kept_cpr, f"k-{unique}")

        async def both_notified() -> bool:
            keys = {k async for k, _h, _v in read_topic(bootstrap, topic)}
            return {gone.encode(), kept.encode()} <= keys

        await _until(both_notified, "both citizens' case-created notifications", worker)

        # The endpoint is down: every delivery is tried, given up and held for replay.
        receiver.default = 503
        runner = WebhookRunner(bootstrap, registry_path=reg, held_dir=held, once=True, poll_interval=0.2,
                               policy=RetryPolicy(base_delay=0.05, jitter=0.0, max_attempts=2))
        await asyncio.wait_for(runner.run(), 60)
        keys = SubscriberKeys(bootstrap, SUBSCRIBER)
        await keys.start()
        try:
            held_now = FailedDeliveryStore(held, SUBSCRIBER, keys=keys).entries()
        finally:
            await keys.stop()
        by_citizen = {c: [e for e in held_now if e.citizen_key == c] for c in (gone, kept)}
        assert by_citizen[gone] and by_citizen[kept], held_now
        # Held with the CPR the recipient needs, opened here with the subscriber's key; sealed on disk.
        assert all(gone_cpr in e.body for e in by_citizen[gone]) and all(kept_cpr in e.body for e in by_citizen[kept])
        on_disk = b"".join(p.read_bytes() for p in held.iterdir())
        assert gone_cpr.encode() not in on_disk and kept_cpr.encode() not in on_disk
        gone_ids = {e.notification_id for e in by_citizen[gone]}
        kept_ids = [e.notification_id for e in by_citizen[kept]]

        async with Publisher(bootstrap) as publisher:
            await publisher.publish(event_from_json("citizen-deceased", {
                "cpr": gone_cpr, "date_of_death": date.today().isoformat()}))
            deadline = time.monotonic() + 60
            while not await receive_and_publish(inbox, kafka_publish(publisher, app_id=app_id)):
                assert time.monotonic() < deadline, "no archive package was delivered:\n" + worker.tail()
                await asyncio.sleep(0.5)
        worker.wait_for("archive saga completed", 60)

        async def shredded() -> bool:
            return not await _subscriber_knows(bootstrap, gone)

        await _until(shredded, "the subscriber's key rows of the deleted citizen to be tombstoned", worker)
    finally:
        worker.stop()
    assert await _subscriber_knows(bootstrap, kept)

    # Read with the subscriber's keys as they now are: the deleted citizen's held bodies do not open.
    keys = SubscriberKeys(bootstrap, SUBSCRIBER)
    await keys.start()
    try:
        spool = FailedDeliveryStore(held, SUBSCRIBER, keys=keys)
        assert set(spool.unreadable()) == gone_ids
        assert [e.notification_id for e in spool.entries()] == kept_ids
    finally:
        await keys.stop()

    # The operator replays with the endpoint back up: the kept citizen's delivery goes, the deleted
    # citizen's do not, and the command says why.
    receiver.default = 200
    tried_before = {nid: receiver.attempts[nid] for nid in gone_ids}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dfdg.cli", "webhooks", "replay", SUBSCRIBER, "--bootstrap", bootstrap,
        "--held-dir", str(held), env=worker.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out_bytes, _ = await asyncio.wait_for(proc.communicate(), 60)
    out = out_bytes.decode()
    assert proc.returncode == 0, out
    assert f"{SUBSCRIBER}: {len(gone_ids)} held deliveries not sent: their citizens have been deleted" in out, out
    assert f"delivered {len(kept_ids)}, still held 0" in out, out
    assert receiver.accepted == kept_ids
    assert {nid: receiver.attempts[nid] for nid in gone_ids} == tried_before  # not one request for them
    assert receiver.bad_signatures == []
    assert len(FailedDeliveryStore(held, SUBSCRIBER)) == 0
    assert all(gone_cpr.encode() not in p.read_bytes() for p in held.iterdir())
    assert gone_cpr not in out and kept_cpr not in out
