"""R7-R9 against the real broker: the worker runs the archive-then-delete saga, the archive
(``receive_and_publish``) receipts the package, and only then is the citizen deleted everywhere.

The worker keeps one row per citizen in its one table, ``citizens`` (``streams.citizen_rows``):
after the deletion the citizen's row is an erasure marker, with no sealed state and nothing
personal, and the citizen's data keys are shredded (tombstones on the key topic)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import date, timedelta
from pathlib import Path

import bagit
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from dfdg.cmd_archive import kafka_publish, receive_and_publish
from dfdg.cmd_dead_letters import read_letters
from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import Subscriber, read_topic
from processors.deceased import held_areas
from processors.events import Event
from processors.state_codec import state_from_dict
from schemas.archive_records import ArchiveReceipt, ArchiveRejected, DeletionCompleted
from schemas.codec import Codec
from schemas.topics import DELETION_COMPLETED, citizen_keys_topic
from sinks.archive_bag import RECEIVED_DIR
from sinks.archive_receiver import pending_bags
from streams.citizen_rows import RowHeader, decode_row
from streams.keystore import ERASED_ROW
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.sealed import citizens_changelog, open_state
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

_MISSING = object()


async def latest_value(bootstrap: str, topic: str, key: str) -> object:
    """The last value written under ``key`` in ``topic`` (None: a tombstone; _MISSING: never written)."""
    found: object = _MISSING
    async for rec_key, _headers, value in read_topic(bootstrap, topic):
        if rec_key == key.encode():
            found = value
    return found


async def wait_until(check, worker: WorkerProcess, what: str, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{worker.tail()}")
        await asyncio.sleep(1.0)


def _events(cpr: str, unique: str) -> list[Event]:
    handover = date.today() + timedelta(days=30)
    return [
        event_from_json("case-created", {  # untyped, group 27: an integration programme, archived (R9.1)
            "cpr": cpr, "case_id": f"case-{unique}", "receiving_municipality": "851",
            "jobcenter_municipality": "851", "contact_group": 27, "handover_date": handover.isoformat(),
            "cv_number": "CV-1"}),
        event_from_json("jobseeker-registered", {  # registration: no archive obligation
            "cpr": cpr, "name": "Synthetic Person", "registration_date": date.today().isoformat(),
            "municipality": "851", "benefit_category": "DP", "unemployment_degree": 1.0}),
    ]


def _death(cpr: str) -> Event:
    return event_from_json("citizen-deceased", {"cpr": cpr, "date_of_death": date.today().isoformat()})


async def _publish(bootstrap: str, *events: Event) -> None:
    async with Publisher(bootstrap) as publisher:
        for event in events:
            await publisher.publish(event)


async def _header(bootstrap: str, app_id: str, key: str) -> RowHeader | None:
    """The clear header of the citizen's latest row in the ``citizens`` table (None: no row)."""
    raw = await latest_value(bootstrap, citizens_changelog(app_id), key)
    return decode_row(raw)[0] if isinstance(raw, bytes) else None


async def _state(bootstrap: str, app_id: str, key: str) -> object:
    """The citizen's latest state; None once the row is an erasure marker (or a tombstone)."""
    raw = await latest_value(bootstrap, citizens_changelog(app_id), key)
    if raw in (None, _MISSING):
        return raw
    if decode_row(raw)[0].erased:  # type: ignore[arg-type]
        return None
    return state_from_dict(json.loads(await open_state(bootstrap, app_id, key, raw)))  # type: ignore[arg-type]


async def _held(bootstrap: str, app_id: str, key: str) -> set[str]:
    state = await _state(bootstrap, app_id, key)
    return set() if state in (None, _MISSING) else set(held_areas(state))  # type: ignore[arg-type]


async def _receive(bootstrap: str, inbox: Path, app_id: str) -> list[ArchiveReceipt | ArchiveRejected]:
    async with Publisher(bootstrap) as publisher:
        return await receive_and_publish(inbox, kafka_publish(publisher, app_id=app_id))


async def _deletions(bootstrap: str, key: str) -> list[DeletionCompleted]:
    consumer = AIOKafkaConsumer(DELETION_COMPLETED, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    codec = Codec.default()
    out: list[DeletionCompleted] = []
    try:
        for _ in range(5):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [r for r in (codec.decode(rec.value) for rec in records if rec.key == key.encode())
                        if isinstance(r, DeletionCompleted)]
    finally:
        await consumer.stop()
    return out


async def _marked_erased(bootstrap: str, app_id: str, key: str) -> bool:
    header = await _header(bootstrap, app_id, key)
    return header is not None and header.erased


async def _changelogs(bootstrap: str, app_id: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(t for t in topics if t.startswith(f"{app_id}-") and t.endswith("-changelog"))


async def _key_rows(bootstrap: str, app_id: str, key: str) -> dict[bytes, object]:
    """The latest value of each of the citizen's rows on the key topic (None: a tombstone)."""
    rows: dict[bytes, object] = {}
    async for rec_key, _headers, value in read_topic(bootstrap, citizen_keys_topic(app_id)):
        if isinstance(rec_key, bytes) and rec_key.startswith(f"{key}:".encode()):
            rows[rec_key] = value
    return rows


async def _assert_erased_everywhere(bootstrap: str, app_id: str, key: str, cpr: str) -> bytes:
    """R7 after the deletion, on every changelog the worker owns and on the key topic; returns the marker row.

    - the citizen's latest ``citizens`` row is an erasure marker: no sealed state, no pending
      deadline, no CPR (the citizen stays known as deceased, R7.3, and nothing else);
    - no other changelog of the app (there should be none) holds anything of the citizen;
    - every data key the citizen had ends in a tombstone: every sealed copy is unreadable."""
    changelogs = await _changelogs(bootstrap, app_id)
    assert changelogs == [citizens_changelog(app_id)], f"the worker's changelogs are {changelogs}"
    row = await latest_value(bootstrap, citizens_changelog(app_id), key)
    assert isinstance(row, bytes), "the citizen's row was tombstoned or never written, not marked erased"
    header, sealed = decode_row(row)
    assert header.erased, "the citizen's latest row is not an erasure marker"
    assert sealed == b"", f"the erasure marker still holds {len(sealed)} bytes of sealed state"
    assert header.pending == (), "the erasure marker still lists pending deadlines"
    assert header.saga is None or header.saga.step == "deleted", header.saga
    assert cpr.encode() not in row, "the erasure marker holds the CPR"
    keys = await _key_rows(bootstrap, app_id, key)
    marked = keys.pop(f"{key}:{ERASED_ROW}".encode(), None)
    assert marked is not None, "the key topic does not mark the citizen as erased (a new key could be made)"
    assert keys, "the citizen never had a data key on the key topic"
    live = [k for k, v in keys.items() if v is not None]
    assert not live, f"{len(live)} of the citizen's {len(keys)} data keys are not tombstoned"
    return row


async def _refusals(bootstrap: str, app_id: str, key: str, code: str) -> list[object]:
    return [x for x in await read_letters(bootstrap) if x.header("dlq.group") == app_id and x.key == key.encode()
            and x.header("dlq.error.code").startswith(code)]


async def test_r7_1_unobligated_areas_go_at_once_archived_ones_after_the_receipt(bootstrap: str, unique: str,
                                                                                  tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "worker", {"DFDG_ARCHIVE_INBOX": str(inbox)}).start()
    try:
        await _publish(bootstrap, *_events(cpr, unique))
        await wait_until(lambda: _has(bootstrap, app_id, key, "registration"), worker, what="the registration in state")
        await _publish(bootstrap, _death(cpr))
        worker.wait_for("archive package delivered", 60)

        async def registration_gone() -> bool:
            return "registration" not in await _held(bootstrap, app_id, key)

        await wait_until(registration_gone, worker, what="the at-once deletion")
        held = await _held(bootstrap, app_id, key)
        assert f"case/case-{unique}/CV" in held and "identity" in held  # archived areas wait for the receipt
        (package,) = pending_bags(inbox)
        bagit.Bag(str(package)).validate()  # raises if anything is wrong
        assert not await _deletions(bootstrap, key)

        outcomes = await _receive(bootstrap, inbox, app_id)
        assert [type(o) for o in outcomes] == [ArchiveReceipt]
        worker.wait_for("archive saga completed", 60)
        await wait_until(lambda: _marked_erased(bootstrap, app_id, key), worker, what="the erasure marker row")
        marker = await _assert_erased_everywhere(bootstrap, app_id, key, cpr)
        (done,) = await _deletions(bootstrap, key)
        assert done.package_id == package.name and done.archived and done.rule == "R7.1"
        assert f"case/case-{unique}/CV" in done.areas and "registration" in done.areas
        kinds = await _notification_kinds(bootstrap, unique, key)
        assert "citizen-deleted" in kinds and "citizen-deceased" in kinds

        # R7.3: the marker is what remains, so a new case for the deleted citizen is refused
        # and leaves the row as it was (no state is kept again).
        await _publish(bootstrap, event_from_json("case-created", {
            "cpr": cpr, "case_id": f"case-{unique}-after", "receiving_municipality": "851",
            "jobcenter_municipality": "851", "contact_group": 27,
            "handover_date": (date.today() + timedelta(days=30)).isoformat(), "cv_number": "CV-1"}))
        await wait_until(lambda: _refusals(bootstrap, app_id, key, "E301"), worker, what="the R7.3 refusal")
        assert await latest_value(bootstrap, citizens_changelog(app_id), key) == marker
        # ...and no new data key is made for them, so nothing of the new event is kept readable.
        (refusal,) = await _refusals(bootstrap, app_id, key, "E301")
        assert refusal.value == b"" and refusal.header("dlq.value-dropped") == "true"
        rows = await _key_rows(bootstrap, app_id, key)
        assert not [k for k, v in rows.items() if v is not None and not k.endswith(ERASED_ROW.encode())], \
            "a new data key was made for the deleted citizen"
    finally:
        worker.stop()
    log = "\n".join(worker.lines)
    assert cpr not in log, "a CPR appeared in the worker's log"
    assert '"logger": "dfdg.audit"' in log or "dfdg.audit" in log


async def _has(bootstrap: str, app_id: str, key: str, area: str) -> bool:
    return area in await _held(bootstrap, app_id, key)


async def _notification_kinds(bootstrap: str, unique: str, key: str) -> list[str]:
    kinds: list[str] = []
    async with Subscriber("jobcenter:851", bootstrap, group_id=f"jobcenter.851.saga-{unique}") as sub:
        for _ in range(20):
            async for n in sub.notifications(idle_timeout_s=1.0):
                if n.citizen_key == key:
                    kinds.append(n.kind)
            if "citizen-deleted" in kinds:
                break
    return kinds


async def test_r7_2_a_crash_after_delivery_resumes_with_one_package(bootstrap: str, unique: str,
                                                                    tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    env = {"DFDG_ARCHIVE_INBOX": str(inbox)}
    crashing = WorkerProcess(bootstrap, app_id, tmp_path / "worker",
                             {**env, "DFDG_TEST_CRASH_AT": f"after-archive-delivery:{key}"}).start()
    try:
        await _publish(bootstrap, *_events(cpr, unique))
        await wait_until(lambda: _has(bootstrap, app_id, key, "registration"), crashing, what="the registration")
        await _publish(bootstrap, _death(cpr))
        assert crashing.proc is not None
        deadline = time.monotonic() + 60
        while crashing.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert crashing.proc.returncode == -9, crashing.tail()
    finally:
        crashing.kill()
    assert len(pending_bags(inbox)) == 1
    assert "registration" in await _held(bootstrap, app_id, key)  # killed before anything was deleted

    worker = WorkerProcess(bootstrap, app_id, tmp_path / "worker", env).start()
    try:
        await wait_until(lambda: _gone(bootstrap, app_id, key, "registration"), worker, what="the resumed deletion")
        assert f"case/case-{unique}/CV" in await _held(bootstrap, app_id, key)  # still no receipt
        outcomes = await _receive(bootstrap, inbox, app_id)
        assert [type(o) for o in outcomes] == [ArchiveReceipt]
        worker.wait_for("archive saga completed", 60)
        await wait_until(lambda: _marked_erased(bootstrap, app_id, key), worker, what="the erasure marker row")
        await _assert_erased_everywhere(bootstrap, app_id, key, cpr)
        assert len(await _deletions(bootstrap, key)) == 1
    finally:
        worker.stop()
    received = [p for p in (inbox / RECEIVED_DIR).iterdir() if p.is_dir()]
    assert len(received) == 1 and not pending_bags(inbox), "the package was delivered more than once"


@pytest.mark.parametrize("point", ["after-deletion-notices", "after-shred"])
async def test_r7_2_r7_3_a_crash_at_the_end_of_the_saga_still_erases_once(bootstrap: str, unique: str,
                                                                            tmp_path: Path, point: str) -> None:
    """SIGKILL after the deletion notices are acknowledged (keys alive), and after the keys are
    shredded (state unreadable, marker not written): the replayed receipt finishes the saga,
    the citizen ends erased everywhere, and the deletion is reported under one id only."""
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    env = {"DFDG_ARCHIVE_INBOX": str(inbox)}
    crashing = WorkerProcess(bootstrap, app_id, tmp_path / "worker",
                             {**env, "DFDG_TEST_CRASH_AT": f"{point}:{key}"}).start()
    try:
        await _publish(bootstrap, *_events(cpr, unique))
        await wait_until(lambda: _has(bootstrap, app_id, key, "registration"), crashing, what="the registration")
        await _publish(bootstrap, _death(cpr))
        crashing.wait_for("archive package delivered", 60)
        assert [type(o) for o in await _receive(bootstrap, inbox, app_id)] == [ArchiveReceipt]
        assert crashing.proc is not None
        deadline = time.monotonic() + 60
        while crashing.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert crashing.proc.returncode == -9, crashing.tail()
    finally:
        crashing.kill()
    assert not await _marked_erased(bootstrap, app_id, key), "the marker was written before the crash point"

    worker = WorkerProcess(bootstrap, app_id, tmp_path / "worker", env).start(restart=True)
    try:
        worker.wait_for("archive saga completed", 90)
        await wait_until(lambda: _marked_erased(bootstrap, app_id, key), worker, what="the erasure marker row")
        await _assert_erased_everywhere(bootstrap, app_id, key, cpr)
        deletions = await _deletions(bootstrap, key)
        assert deletions and len({d.event_id for d in deletions}) == 1, "the deletion was reported under two ids"
        assert "citizen-deleted" in await _notification_kinds(bootstrap, unique, key)
    finally:
        worker.stop()


async def _gone(bootstrap: str, app_id: str, key: str, area: str) -> bool:
    return area not in await _held(bootstrap, app_id, key)


async def test_r7_2_a_corrupted_package_gets_no_receipt_and_nothing_is_deleted(bootstrap: str, unique: str,
                                                                               tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "worker", {"DFDG_ARCHIVE_INBOX": str(inbox)}).start()
    try:
        await _publish(bootstrap, *_events(cpr, unique))
        await wait_until(lambda: _has(bootstrap, app_id, key, "registration"), worker, what="the registration in state")
        await _publish(bootstrap, _death(cpr))
        worker.wait_for("archive package delivered", 60)
        (package,) = pending_bags(inbox)
        payload = package / "data" / "cases.jsonl"
        data = bytearray(payload.read_bytes())
        data[10] = ord("X") if data[10] != ord("X") else ord("Y")
        payload.write_bytes(bytes(data))

        outcomes = await _receive(bootstrap, inbox, app_id)
        assert [type(o) for o in outcomes] == [ArchiveRejected]
        worker.wait_for("ALERT archive saga needs an operator", 60)
        assert f"case/case-{unique}/CV" in await _held(bootstrap, app_id, key)
        # The saga is kept, rejected, in the citizen's row, and the citizen is not erased.
        async def saga_rejected() -> bool:
            header = await _header(bootstrap, app_id, key)
            return header is not None and header.saga is not None and header.saga.step not in ("pending", "delivered")

        await wait_until(saga_rejected, worker, what="the rejected saga in the citizen's row")
        header = await _header(bootstrap, app_id, key)
        assert header is not None and not header.erased
        assert header.saga is not None and header.saga.step == "rejected", header.saga
        assert header.saga.package_id == package.name
        assert not await _deletions(bootstrap, key)
    finally:
        worker.stop()
