"""Archive answers that match no saga (R7.2), against the real broker and the real worker: a
receipt, rejection or retry for an unknown or mistyped citizen key, for another package, or whose
citizen_key is not the key it came under is never dropped silently and never makes a citizen.
It becomes a dead letter (E309) that names fields, not values; no row and no data key is written."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dfdg.cmd_archive import kafka_publish, retry_request
from dfdg.cmd_dead_letters import read_letters
from dfdg.publisher import Publisher
from processors.archive_retry import RETRY_BY_TIMER
from processors.reference import E309_ARCHIVE_ANSWER_UNMATCHED
from schemas.archive_records import ArchiveRejected, ArchiveRetry
from schemas.codec import Codec
from schemas.topics import archive_receipts_topic
from sinks.archive_receiver import pending_bags
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.integration.test_archive_saga import _MISSING, _header, _key_rows, latest_value, wait_until
from tests.integration.test_archive_saga_stuck import _dead_citizen, _worker
from tests.sealed import citizens_changelog
from tests.synthetic import synthetic_cpr

pytestmark = pytest.mark.kafka


async def _unmatched(bootstrap: str, app_id: str) -> list[object]:
    return [x for x in await read_letters(bootstrap)
            if x.header("dlq.group") == app_id and x.header("dlq.error.code") == E309_ARCHIVE_ANSWER_UNMATCHED]


async def test_r7_2_an_archive_answer_matching_no_saga_is_a_dead_letter_and_writes_no_row(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    rng = random.Random(unique)
    cpr, stranger_cpr = synthetic_cpr(rng), synthetic_cpr(rng)
    key, stranger = citizen_key(DEV_PSEUDONYM_KEY, cpr), citizen_key(DEV_PSEUDONYM_KEY, stranger_cpr)
    app_id, inbox = f"dfdg-answers-{unique}", tmp_path / "inbox"
    worker = _worker(bootstrap, app_id, tmp_path, inbox).start()
    try:
        await _dead_citizen(bootstrap, worker, app_id, cpr, unique, key)
        worker.wait_for("archive package delivered", 60)
        (package,) = pending_bags(inbox)
        now = datetime.now(UTC)
        answers = [
            # An operator's retry under a key no saga has (mistyped, or a citizen never seen).
            retry_request(package.name, stranger, now),
            # The right citizen, another package.
            retry_request(f"{package.name}-typo", key, now),
            # A rejection whose citizen_key field is not the key it is published under.
            ArchiveRejected(rejection_id=f"rej-{unique}", package_id=package.name, citizen_key=stranger,
                            reason="bad bag", rejected_at=now),
        ]
        async with Publisher(bootstrap) as publisher:
            publish = kafka_publish(publisher, app_id=app_id)
            await publish(answers[0])  # type: ignore[arg-type]
            await publish(answers[1])  # type: ignore[arg-type]
            # kafka_publish keys by the answer's own citizen_key; this one goes under the saga's key.
            codec = Codec.default()
            await publisher.publish_raw(archive_receipts_topic(app_id), codec.encode(answers[2]), key=key.encode(),
                                        headers=list(codec.headers_for(answers[2])))

        async def three() -> list[object]:
            found = await _unmatched(bootstrap, app_id)
            return found if len(found) >= 3 else []

        letters = await wait_until(three, worker, what="three E309 dead letters")
        assert len(letters) == 3, [x.header("dlq.error.message") for x in letters]
        messages = sorted(x.header("dlq.error.message") for x in letters)
        assert any("no archive saga is held for its key" in m for m in messages), messages
        assert any("package_id field" in m for m in messages), messages
        assert any("citizen_key field" in m for m in messages), messages
        for x in letters:
            # Keyed by the letter's coordinates, never by a key some publisher typed; no value named.
            assert x.key is not None and x.key.startswith(b"dlq-"), x.key
            message = x.header("dlq.error.message")
            assert stranger not in message and key not in message and package.name not in message
        # The saga itself did not move: still waiting for its receipt.
        header = await _header(bootstrap, app_id, key)
        assert header is not None and header.saga is not None and header.saga.step == "delivered"
        assert header.saga.package_id == package.name

        # A timer's retry for a saga that no longer needs one is not dropped silently either.
        async with Publisher(bootstrap) as publisher:
            stale = ArchiveRetry(retry_id=f"stale-{unique}", package_id=package.name, citizen_key=key,
                                 requested_by=RETRY_BY_TIMER, requested_at=now)
            await kafka_publish(publisher, app_id=app_id)(stale)  # type: ignore[arg-type]
        worker.wait_for("archive answer ignored", 60)
        # Not a phantom citizen: no row and no data key for the stranger's key (its batch, acknowledged
        # long before the ignored retry was handled, wrote every row it was going to).
        assert await latest_value(bootstrap, citizens_changelog(app_id), stranger) is _MISSING
        assert await _key_rows(bootstrap, app_id, stranger) == {}
    finally:
        worker.stop()
    log = "\n".join(worker.lines)
    assert cpr not in log and stranger_cpr not in log, "a CPR appeared in the worker's log"

