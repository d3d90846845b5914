"""One bad message never stops a partition, and is never dropped silently: each poison case of
the issue becomes a dead letter with its code and coordinates, the worker stays alive, and the
next event on the same partition is processed. Against the real broker and the real worker."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dfdg.cmd_dead_letters import read_letters
from dfdg.publisher import Publisher
from dfdg.subscriber import read_topic
from processors.events import CaseCreated, DeadlineDue, topic_for
from processors.model import deterministic_id
from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from schemas.records import Notification
from schemas.topics import citizen_events_topic
from tests.integration.step_model import key_of, owed, passed_cases
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

CODEC = Codec.default()
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
ENV = {"DFDG_NOW": NOW.isoformat(), "DFDG_ARCHIVE_INBOX": "unused"}


async def _notified(bootstrap: str, wanted: set[str], recipients: set[str]) -> bool:
    seen: set[str] = set()
    for recipient in recipients:
        async for _, _, value in read_topic(bootstrap, topic_for_subscriber(recipient), idle_timeout_s=0.5):
            record = CODEC.decode(value)
            if isinstance(record, Notification):
                seen.add(record.notification_id)
    return wanted <= seen


async def _letters_for(bootstrap: str, app_id: str, code: str) -> list[object]:
    return [x for x in await read_letters(bootstrap)
            if x.header("dlq.group") == app_id and x.header("dlq.error.code").startswith(code)]


async def _wait(check: object, worker: WorkerProcess, what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        assert worker.proc is not None and worker.proc.poll() is None, f"the worker died:\n{worker.tail()}"
        await asyncio.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}\n{worker.tail()}")


def _poison_cases(good: CaseCreated) -> dict[str, bytes]:
    """Each poison value, to be sent with the good event's key (so on its ingress partition)."""
    def variant(n: int, **changes: object) -> bytes:
        event = dataclasses.replace(good, event_id=deterministic_id("poison", good.event_id, str(n)), **changes)
        return CODEC.encode(event)

    return {
        "E211": variant(1, case_id="x" * 120_000),  # a 120 kB id: the contract's string allows it
        "E212 year 9999": variant(2, handover_date=date(9999, 11, 1)),
        "E212 year 1": variant(3, handover_date=date(1, 1, 1)),
        "E101": b"\x00junk" * 202_000,  # 1.01 MB: accepted by the broker, over the producer's limit once sealed
    }


async def test_poison_at_the_door_and_in_the_step_never_stops_a_partition(bootstrap: str, unique: str,
                                                                          tmp_path: Path) -> None:
    app_id = f"poison-{unique}"
    good_first, good_after_door, good_after_step = passed_cases(unique, 3, NOW.date(), NOW)
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w", ENV).start()
    try:
        async with Publisher(bootstrap) as publisher:
            topic = topic_for(CaseCreated)
            for value in _poison_cases(good_after_door).values():
                await publisher.publish_raw(topic, value, key=good_after_door.event_id.encode(),
                                            headers=[("content-type", b"application/octet-stream")])
            await publisher.publish(good_after_door)
            # Past the door: a deadline no handler knows, on the good citizen's own partition.
            odd = DeadlineDue(event_id=deterministic_id("odd", unique), occurred_at=NOW, producer="tests",
                              deadline_id="R99|x|2026-01-01", rule="R99.9", due_date=date(2026, 1, 1))
            await publisher.publish_raw(citizen_events_topic(app_id), CODEC.encode(odd),
                                        key=key_of(good_after_step.cpr).encode(), headers=CODEC.headers_for(odd))
            await publisher.publish(good_after_step)
            await publisher.publish(good_first)
        expected = owed([good_after_door, good_after_step, good_first], NOW)
        await _wait(lambda: _notified(bootstrap, expected.notifications, expected.recipients), worker,
                    "the good events' notifications after the poison")
        for code in ("E211", "E212", "E101", "E901"):
            await _wait(lambda code=code: _letters_for(bootstrap, app_id, code), worker, f"a dead letter {code}")
        letters = {c: await _letters_for(bootstrap, app_id, c) for c in ("E211", "E212", "E101", "E901")}
        assert len(letters["E212"]) == 2, "year 9999 and year 1 each get their letter"
        (junk,) = letters["E101"]
        assert junk.header("dlq.truncated") == "true" and junk.header("dlq.original-size") == str(1_010_000)
        assert len(junk.header("dlq.original-sha256")) == 64 and junk.header("dlq.topic") == topic
        assert junk.header("dlq.offset").isdigit() and junk.header("dlq.partition").isdigit()
        (odd_letter,) = letters["E901"]
        assert odd_letter.header("dlq.topic") == citizen_events_topic(app_id)
        for letter in letters["E211"] + letters["E212"]:
            message = letter.header("dlq.error.message")
            assert "handover_date" in message or "case_id" in message, message
            assert "9999" not in message and "xxxx" not in message, "the message repeats the value"
        assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
    finally:
        worker.stop()
