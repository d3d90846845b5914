"""The saga shell redelivers without a third bag and checks a receipt against the right copy
(review findings H2, H3): the real SagaRunner on a real inbox (BagIt, the archive's receiver),
with the worker's crash before the row played by restoring the saga the row still holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from processors.archive_retry import RETRY_BY_OPERATOR
from processors.deceased import ArchiveSaga, classify_areas
from processors.reference import E308_RECEIPT_MISMATCH
from schemas.archive_records import ArchiveReceipt, ArchiveRetry
from schemas.codec import Codec
from sinks.archive_bag import RECEIVED_DIR, deliver, tagmanifest_sha256
from sinks.archive_receiver import receive
from streams.citizen_repo import Citizen
from streams.crash_points import CrashPoints
from streams.metrics import Metrics
from streams.outbox import Outbox
from streams.saga import SagaRunner
from tests.sinks.test_archive_bag import _content, _state

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
KEY = "key-1"


def _runner(inbox: Path) -> SagaRunner:
    return SagaRunner(None, None, Codec.default(), None, inbox, Metrics(), CrashPoints(""))  # type: ignore[arg-type]


def _citizen(**saga: object) -> Citizen:
    state = _state(KEY)
    to_archive, at_once = classify_areas(state)
    base = ArchiveSaga(citizen_key=KEY, package_id=_content(KEY).package_id, date_of_death=date(2024, 5, 1),
                       areas_to_archive=to_archive, areas_deleted_at_once=at_once, started_at=NOW)
    return Citizen(KEY, 0, state, replace(base, **saga))  # type: ignore[arg-type]


def _retry(package_id: str, n: int = 0) -> ArchiveRetry:
    return ArchiveRetry(retry_id=f"retry-{n}", package_id=package_id, citizen_key=KEY,
                        requested_by=RETRY_BY_OPERATOR, requested_at=NOW)


def _receipt(package_id: str, sha: str) -> ArchiveReceipt:
    return ArchiveReceipt(receipt_id=f"r-{sha[:4]}", package_id=package_id, citizen_key=KEY,
                          tagmanifest_sha256=sha, payload_oxum="1.1", received_at=NOW)


def _bags(inbox: Path) -> list[str]:
    inbox_bags = [p.name for p in inbox.iterdir() if p.is_dir() and p.name not in (RECEIVED_DIR, "rejected")]
    received = [p.name for p in (inbox / RECEIVED_DIR).iterdir()] if (inbox / RECEIVED_DIR).is_dir() else []
    return sorted(inbox_bags) + sorted(f"{RECEIVED_DIR}/{n}" for n in received)


async def test_h3_a_retry_replayed_after_a_crash_delivers_no_third_bag_and_its_receipt_is_trusted(
        tmp_path: Path) -> None:
    runner, pid = _runner(tmp_path), _content(KEY).package_id
    # Bag 1 is in received/P; the saga recorded another checksum, so the archive's receipt is refused.
    bag1 = deliver(tmp_path, _content(KEY))
    receive(tmp_path)
    bag1_sha = tagmanifest_sha256(tmp_path / RECEIVED_DIR / pid)
    citizen = _citizen(step="delivered", delivered_sha256="ee" * 32, deliveries=1)
    with Outbox() as box:
        refusal = await runner.on_archive_answer(citizen, _receipt(pid, bag1_sha), NOW, box)
    assert refusal is not None and refusal.code == E308_RECEIPT_MISMATCH and bag1.written
    assert citizen.saga is not None and citizen.saga.refused_sha256 == (bag1_sha, "ee" * 32)
    row = citizen.saga  # what the row holds
    # The operator's retry writes bag 2; the worker crashes before the row; the archive receives
    # bag 2 as received/P.1 and receipts it.
    with Outbox() as box:
        await runner.on_archive_answer(citizen, _retry(pid), NOW, box)
    bag2_sha = citizen.saga.delivered_sha256
    assert citizen.saga.step == "delivered" and bag2_sha not in (None, bag1_sha)
    receive(tmp_path)
    assert _bags(tmp_path) == [f"{RECEIVED_DIR}/{pid}", f"{RECEIVED_DIR}/{pid}.1"]
    # Restarted from the row: the retry is handled again. It reuses bag 2, writes no bag 3.
    citizen = _citizen(**{f: getattr(row, f) for f in ("step", "delivered_sha256", "deliveries",
                                                          "receipt_refused", "refused_sha256")})
    with Outbox() as box:
        await runner.on_archive_answer(citizen, _retry(pid), NOW, box)
    assert citizen.saga.step == "delivered" and citizen.saga.delivered_sha256 == bag2_sha
    assert _bags(tmp_path) == [f"{RECEIVED_DIR}/{pid}", f"{RECEIVED_DIR}/{pid}.1"]
    # Had the crash come before "delivered" was written at all (the saga pending), bag 2's receipt
    # is checked against bag 2 (received/P.1), not bag 1 (received/P).
    pending = _citizen(receipt_refused=row.receipt_refused, refused_sha256=row.refused_sha256)
    assert await runner._receipt(pending, pending.saga, _receipt(pid, bag2_sha)) == (  # type: ignore[arg-type]
        replace(pending.saga, step="receipted", receipt_sha256=bag2_sha, delivered_sha256=bag2_sha,  # type: ignore[arg-type]
                receipt_refused=None, refused_sha256=()), None)


async def test_h2_an_operator_retry_moves_a_delivered_saga_whose_receipt_it_never_saw(tmp_path: Path) -> None:
    runner, pid = _runner(tmp_path), _content(KEY).package_id
    # The receipt for bag 1 went to E309 (no saga yet); the death then started the saga, which
    # found bag 1 in received/ and went delivered. No receipt will come.
    deliver(tmp_path, _content(KEY))
    receive(tmp_path)
    citizen = _citizen()
    with Outbox() as box:
        await runner.run(citizen, NOW, box)
    bag1_sha = tagmanifest_sha256(tmp_path / RECEIVED_DIR / pid)
    assert citizen.saga is not None and citizen.saga.step == "delivered"
    assert citizen.saga.delivered_sha256 == bag1_sha and citizen.saga.receipt_refused is None
    # The operator's retry delivers a fresh bag into the inbox, for the archive to receipt.
    with Outbox() as box:
        assert await runner.on_archive_answer(citizen, _retry(pid), NOW, box) is None
    assert citizen.saga.step == "delivered" and citizen.saga.delivered_sha256 != bag1_sha
    assert _bags(tmp_path) == [pid, f"{RECEIVED_DIR}/{pid}"]
    assert tagmanifest_sha256(tmp_path / pid) == citizen.saga.delivered_sha256


async def test_h3_after_a_damaged_receipt_the_retry_does_not_reuse_the_received_bag(tmp_path: Path) -> None:
    runner, pid = _runner(tmp_path), _content(KEY).package_id
    citizen = _citizen()
    with Outbox() as box:
        await runner.run(citizen, NOW, box)
    receive(tmp_path)  # the archive received bag 1; its receipt names a checksum no bag has
    assert citizen.saga is not None
    with Outbox() as box:
        refusal = await runner.on_archive_answer(citizen, _receipt(pid, "0" * 64), NOW, box)
    assert refusal is not None and refusal.code == E308_RECEIPT_MISMATCH
    bag1_sha = citizen.saga.delivered_sha256
    with Outbox() as box:
        await runner.on_archive_answer(citizen, _retry(pid), NOW, box)
    # A fresh bag in the inbox, for the archive to receipt: not received/P, which it never will again.
    assert citizen.saga.step == "delivered" and citizen.saga.delivered_sha256 != bag1_sha
    assert _bags(tmp_path) == [pid, f"{RECEIVED_DIR}/{pid}"]
