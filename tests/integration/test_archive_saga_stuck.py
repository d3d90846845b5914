"""Archive sagas that cannot get stuck (R7.2), against the real broker and the real worker:

- a failed delivery is retried by the worker itself, with capped backoff, until it succeeds;
- a rejected package waits for an operator's ``dfdg archive retry`` (the real CLI), and only then
  is delivered again;
- a receipt that does not name the delivered package's checksum is refused (E308), visibly, and
  the saga waits for one that does.

The worker runs with a backoff of 1 s doubling to 2 s (``DFDG_ARCHIVE_RETRY_*_SECONDS``, a
setting for tests only) instead of 30 s to an hour, so a retry is seen within seconds."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bagit
import pytest

from dfdg.cmd_archive import kafka_publish, receive_and_publish
from dfdg.publisher import Publisher
from processors.archive_retry import RetryPolicy, delivery_backoff
from processors.reference import E308_RECEIPT_MISMATCH
from schemas.archive_records import ArchiveReceipt, ArchiveRejected
from sinks.archive_bag import RECEIVED_DIR, REJECTED_DIR, tagmanifest_sha256
from sinks.archive_receiver import pending_bags
from sinks.crypto import is_sealed
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.integration.test_archive_saga import (
    _assert_erased_everywhere,
    _death,
    _deletions,
    _events,
    _has,
    _header,
    _held,
    _marked_erased,
    _publish,
    _receive,
    _refusals,
    wait_until,
)
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

# The backoff the worker runs with here; its archive-retries timer then ticks every second.
POLICY = RetryPolicy(first=timedelta(seconds=1), cap=timedelta(seconds=2))
FAST_RETRY = {"DFDG_ARCHIVE_RETRY_FIRST_SECONDS": "1", "DFDG_ARCHIVE_RETRY_CAP_SECONDS": "2"}


def _worker(bootstrap: str, app_id: str, tmp_path: Path, inbox: Path) -> WorkerProcess:
    return WorkerProcess(bootstrap, app_id, tmp_path / "worker", {"DFDG_ARCHIVE_INBOX": str(inbox), **FAST_RETRY})


async def _dead_citizen(bootstrap: str, worker: WorkerProcess, app_id: str, cpr: str, unique: str,
                        key: str) -> None:
    """A citizen with an archived case and a registration, then their death."""
    await _publish(bootstrap, *_events(cpr, unique))
    await wait_until(lambda: _has(bootstrap, app_id, key, "registration"), worker, what="the registration in state")
    await _publish(bootstrap, _death(cpr))


def _logged(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    """The worker's JSON log records of ``event``. A line may start with a terminal control
    sequence (Faust shows the cursor again: ESC[?25h), so each is read from its first brace."""
    found = []
    for line in list(worker.lines):
        start = line.find("{")
        if start < 0 or f'"{event}"' not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


async def _complete_with_receipt(bootstrap: str, worker: WorkerProcess, app_id: str, inbox: Path, key: str,
                                 cpr: str) -> None:
    """The archive receipts the pending package; the saga completes and the citizen is erased, once."""
    outcomes = await _receive(bootstrap, inbox, app_id)
    assert [type(o) for o in outcomes] == [ArchiveReceipt], outcomes
    worker.wait_for("archive saga completed", 60)
    await wait_until(lambda: _marked_erased(bootstrap, app_id, key), worker, what="the erasure marker row")
    await _assert_erased_everywhere(bootstrap, app_id, key, cpr)
    assert len(await _deletions(bootstrap, key)) == 1


async def test_r7_2_a_failed_delivery_is_retried_with_capped_backoff_until_delivered(bootstrap: str, unique: str,
                                                                                      tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    # The inbox cannot be written: a file stands where its directory should be. (The tests run
    # as root, for whom a read-only directory is still writable; a file fails for everyone.)
    inbox.write_text("not a directory\n")
    worker = _worker(bootstrap, app_id, tmp_path, inbox).start()
    try:
        await _dead_citizen(bootstrap, worker, app_id, cpr, unique, key)
        # Three failed attempts with nothing from outside: the worker's own timer retried twice.
        worker.wait_for("ALERT archive delivery failed", 60, count=3)
        failures = _logged(worker, "ALERT archive delivery failed")[:3]
        assert [f["failures"] for f in failures] == [1, 2, 3]
        assert {f["error"] for f in failures} == {"FileExistsError"}
        assert _logged(worker, "archive deliveries retried"), "the retries did not come from the worker's timer"
        # Each wait is the policy's backoff for that failure (1 s, 2 s, then capped at 2 s, not 4 s),
        # measured from when the failure was logged; and no attempt came before its wait was over.
        stamps = [datetime.fromisoformat(str(f["timestamp"])) for f in failures]
        retry_at = [datetime.fromisoformat(str(f["retry_at"])) for f in failures]
        waits = [(r - t).total_seconds() for r, t in zip(retry_at, stamps, strict=True)]
        expected = [delivery_backoff(n, POLICY).total_seconds() for n in (1, 2, 3)]
        assert expected == [1.0, 2.0, 2.0]
        assert all(e - 0.6 < w <= e + 0.01 for w, e in zip(waits, expected, strict=True)), (waits, expected)
        assert all(stamps[n + 1] >= retry_at[n] for n in range(2)), "a retry came before its backoff was over"
        # Nothing archived is deleted while the delivery fails; the saga's row records the failures.
        assert f"case/case-{unique}/CV" in await _held(bootstrap, app_id, key)
        header = await _header(bootstrap, app_id, key)
        assert header is not None and header.saga is not None and header.saga.step == "pending", header
        assert header.saga.failed_deliveries >= 3 and header.saga.retry_at is not None
        assert header.saga.last_error == "FileExistsError"

        # The inbox is repaired; no one tells the worker. It delivers the package on its own.
        inbox.unlink()
        worker.wait_for("archive package delivered", 30)
        (package,) = pending_bags(inbox)
        bagit.Bag(str(package)).validate()
        delivered = await _header(bootstrap, app_id, key)
        assert delivered is not None and delivered.saga is not None
        assert delivered.saga.step == "delivered" and delivered.saga.failed_deliveries == 0
        assert delivered.saga.delivered_sha256 == tagmanifest_sha256(package)
        await _complete_with_receipt(bootstrap, worker, app_id, inbox, key, cpr)
    finally:
        worker.stop()
    assert cpr not in "\n".join(worker.lines), "a CPR appeared in the worker's log"


def _archive_retry_cli(bootstrap: str, app_id: str, inbox: Path, package_id: str) -> dict[str, object]:
    """``dfdg archive retry <package>`` as an operator runs it: the real CLI, in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "dfdg.cli", "archive", "retry", package_id, "--inbox", str(inbox),
         "--bootstrap", bootstrap],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DFDG_APP_ID": app_id},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"dfdg archive retry exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_r7_2_a_rejected_package_waits_for_dfdg_archive_retry_then_completes(bootstrap: str, unique: str,
                                                                                    tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    worker = _worker(bootstrap, app_id, tmp_path, inbox).start()
    try:
        await _dead_citizen(bootstrap, worker, app_id, cpr, unique, key)
        worker.wait_for("archive package delivered", 60)
        (package,) = pending_bags(inbox)
        payload = package / "data" / "cases.jsonl"  # damaged on the way: the archive rejects it
        data = bytearray(payload.read_bytes())
        data[10] = ord("X") if data[10] != ord("X") else ord("Y")
        payload.write_bytes(bytes(data))
        assert [type(o) for o in await _receive(bootstrap, inbox, app_id)] == [ArchiveRejected]
        worker.wait_for("ALERT archive saga needs an operator", 60)

        async def rejected() -> bool:
            header = await _header(bootstrap, app_id, key)
            return header is not None and header.saga is not None and header.saga.step == "rejected"

        await wait_until(rejected, worker, what="the rejected saga in the citizen's row")
        # No retry by itself: a backoff retry would come within one backoff and one timer tick
        # (2 s here); watch for three times that, failing at the first sign of one.
        watch_until = time.monotonic() + 3 * (POLICY.first.total_seconds() + 1.0)
        while time.monotonic() < watch_until:
            assert not pending_bags(inbox), "the rejected package was delivered again without an operator"
            assert sum("archive package delivered" in line for line in list(worker.lines)) == 1
            assert not _logged(worker, "archive deliveries retried"), "the timer retried a rejected package"
            await asyncio.sleep(0.5)
        assert await rejected(), "the rejected saga moved on without an operator"
        assert f"case/case-{unique}/CV" in await _held(bootstrap, app_id, key)
        assert not await _deletions(bootstrap, key)

        # The operator has dealt with the cause and runs the real CLI (the citizen key comes from
        # the rejected bag under <inbox>/rejected/).
        assert (inbox / REJECTED_DIR / package.name).is_dir()
        answer = _archive_retry_cli(bootstrap, app_id, inbox, package.name)
        assert answer["retry"] == package.name and answer["retry_id"]
        worker.wait_for("archive package delivered", 60, count=2)
        (again,) = pending_bags(inbox)
        assert again.name == package.name  # the same package id, delivered anew
        bagit.Bag(str(again)).validate()
        await _complete_with_receipt(bootstrap, worker, app_id, inbox, key, cpr)
    finally:
        worker.stop()
    assert cpr not in "\n".join(worker.lines), "a CPR appeared in the worker's log"


def _operator_port(worker: WorkerProcess) -> int:
    (listening, *_) = _logged(worker, "operator pages listening")
    return int(str(listening["port"]))


def _metric(port: int, line_start: str) -> float:
    """The value of the first /metrics sample whose line starts with ``line_start`` (0: none yet)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_r7_2_e308_a_receipt_not_matching_the_delivered_package_is_refused_and_the_saga_waits(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    refused_metric = 'dfdg_events_out_total{type="ArchiveReceiptRefused"}'
    worker = _worker(bootstrap, app_id, tmp_path, inbox).start()
    try:
        await _dead_citizen(bootstrap, worker, app_id, cpr, unique, key)
        worker.wait_for("archive package delivered", 60)
        (package,) = pending_bags(inbox)
        port = _operator_port(worker)
        assert _metric(port, refused_metric) == 0.0

        # A receipt for the right package and citizen, naming another checksum.
        forged = ArchiveReceipt(receipt_id=f"forged-{unique}", package_id=package.name, citizen_key=key,
                                tagmanifest_sha256="0" * 64, payload_oxum="1.1", received_at=datetime.now(UTC))
        async with Publisher(bootstrap) as publisher:
            await kafka_publish(publisher, app_id=app_id)(forged)
        worker.wait_for("ALERT archive receipt refused", 60)
        (refusal,) = _logged(worker, "ALERT archive receipt refused")
        assert refusal["code"] == E308_RECEIPT_MISMATCH and refusal["package_id"] == package.name
        assert refusal["receipt_id"] == forged.receipt_id
        assert _metric(port, refused_metric) == 1.0

        # The saga keeps waiting for the delivered package's receipt; nothing archived is deleted.
        header = await _header(bootstrap, app_id, key)
        assert header is not None and header.saga is not None and not header.erased
        assert header.saga.step == "delivered" and header.saga.receipt_sha256 is None, header.saga
        assert header.saga.delivered_sha256 == tagmanifest_sha256(package)
        held = await _held(bootstrap, app_id, key)
        assert f"case/case-{unique}/CV" in held and "identity" in held
        assert not await _deletions(bootstrap, key)
        assert "archive saga completed" not in "\n".join(worker.lines)
        assert pending_bags(inbox) == [package]

        # The archive's own receipt names the delivered checksum: the saga completes.
        await _complete_with_receipt(bootstrap, worker, app_id, inbox, key, cpr)
        assert _metric(port, refused_metric) == 1.0  # the matching receipt was not refused
    finally:
        worker.stop()
    assert cpr not in "\n".join(worker.lines), "a CPR appeared in the worker's log"


async def test_r7_2_e308_a_refused_receipt_is_a_dead_letter_and_dfdg_archive_retry_delivers_again(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
    app_id, inbox = f"dfdg-saga-{unique}", tmp_path / "inbox"
    worker = _worker(bootstrap, app_id, tmp_path, inbox).start()
    try:
        await _dead_citizen(bootstrap, worker, app_id, cpr, unique, key)
        worker.wait_for("archive package delivered", 60)
        (package,) = pending_bags(inbox)

        # The archive verifies the bag and moves it to received/, but its receipt names another
        # checksum (damaged on the way back). It will send no other receipt for that bag.
        async def wrong_checksum(outcome: ArchiveReceipt | ArchiveRejected) -> None:
            assert isinstance(outcome, ArchiveReceipt)
            async with Publisher(bootstrap) as publisher:
                await kafka_publish(publisher, app_id=app_id)(replace(outcome, tagmanifest_sha256="0" * 64))

        await receive_and_publish(inbox, wrong_checksum)
        assert not pending_bags(inbox) and (inbox / RECEIVED_DIR / package.name).is_dir()
        worker.wait_for("ALERT archive receipt refused", 60)

        # Not a dead end: a dead letter operators find with dfdg dead-letters list, naming no value.
        letters = await wait_until(lambda: _refusals(bootstrap, app_id, key, E308_RECEIPT_MISMATCH), worker,
                                   what="the E308 dead letter")
        (letter,) = letters
        assert "0" * 64 not in letter.header("dlq.error.message") and cpr.encode() not in letter.value
        # Sealed for the citizen like every letter (dfdg.dead-letter keeps them for ever); replay opens it.
        assert is_sealed(letter.value) and b"0" * 64 not in letter.value

        async def refusal_recorded() -> bool:
            header = await _header(bootstrap, app_id, key)
            return header is not None and header.saga is not None and header.saga.receipt_refused is not None

        await wait_until(refusal_recorded, worker, what="the refusal in the saga's row")
        header = await _header(bootstrap, app_id, key)
        assert header is not None and header.saga is not None and header.saga.step == "delivered"
        assert f"case/case-{unique}/CV" in await _held(bootstrap, app_id, key)
        assert not await _deletions(bootstrap, key)

        # The operator runs the real CLI; the citizen key comes from the received bag. The worker
        # delivers a fresh bag (not the received one), the archive receipts it, the saga completes.
        answer = _archive_retry_cli(bootstrap, app_id, inbox, package.name)
        assert answer["retry"] == package.name
        worker.wait_for("archive package delivered", 60, count=2)
        (again,) = pending_bags(inbox)
        assert again.name == package.name
        bagit.Bag(str(again)).validate()
        await _complete_with_receipt(bootstrap, worker, app_id, inbox, key, cpr)
    finally:
        worker.stop()
    assert cpr not in "\n".join(worker.lines), "a CPR appeared in the worker's log"
