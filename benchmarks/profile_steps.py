"""Profile the door and the citizen step as the worker runs them, without a broker.

``python -m benchmarks.profile_steps [N] [--profile] [--due]`` feeds N new citizens' ``CaseCreated``
through the real ``Door`` and ``CitizenStep`` (sealing, key rows, rules, row writes, outputs,
outbox) in batches of ``BATCH_MAX``, and prints the CPU per event of each step; then, as the
burst benchmark does, fires each citizen's R3.1 handover deadline (the timer's ``DeadlineDue``,
encoded as it sends it) through the same step, and prints the CPU per due deadline.
``--due`` profiles only that second phase. What is left
out, and only that: the network. Records go to a producer that acknowledges at once
(``_AckingProducer``), the key store is not read from a topic, and the rows live in a dict.
A profiling aid for the CPU path; it proves nothing about delivery (the Kafka tests do).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import case_created_batch

BATCH = 500


class _AckingProducer:
    """Takes every record and acknowledges it at once (no network)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[Any]] = {}
        self._ends: dict[tuple[str, int], int] = {}

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        from streams.partitioning import murmur2

        return (murmur2(key or b"") & 0x7FFFFFFF) % 4

    async def send(self, records: Mapping[tuple[str, int], Sequence[Any]]) -> dict[tuple[str, int], int]:
        last = {}
        for tp, rows in records.items():
            self.records.setdefault(tp, []).extend(rows)
            self._ends[tp] = self._ends.get(tp, -1) + len(rows)
            last[tp] = self._ends[tp]
        return last


class _Changelog:
    topic = "profile-citizens-changelog"

    def __init__(self, send: Any) -> None:
        self._send = send

    async def send(self, partition: int, key: bytes, row: bytes) -> None:
        await self._send(self.topic, key, row, None, partition)

    def persisted(self, offsets: dict[int, int]) -> None:
        pass


def _build() -> tuple[Any, Any, _AckingProducer]:
    from datetime import UTC, datetime

    from schemas.codec import Codec
    from sinks.crypto import MasterKey
    from sinks.kafka_out import KafkaOutputs
    from streams.citizen_repo import CitizenRepository
    from streams.citizen_step import CitizenStep
    from streams.clock import ManualClock
    from streams.crash_points import CrashPoints
    from streams.dead_letters import DeadLetters
    from streams.deadlines import DeadlineIndex
    from streams.door import Door
    from streams.handoff import DecodedHandOff
    from streams.key_shelf import RocksWrappedKeys
    from streams.keystore import KeyStore
    from streams.metrics import Metrics
    from streams.outbox import KafkaSender
    from streams.saga import SagaRunner
    from streams.saga_watch import SagaWatch
    from streams.sealing import Sealer
    from streams.settings import DEV_PSEUDONYM_KEY
    from streams.store_policy import KEY_SHELF_BLOCK_CACHE, KEY_SHELF_WRITE_BUFFER

    _ = datetime.now(UTC)
    producer = _AckingProducer()
    sender = KafkaSender(producer, 1_000_000)
    # The worker's own key shelf (a RocksDB copy of the key topic), as in streams.bootstrap; one
    # folder for every run, whose copies of ended runs the next one removes.
    keys = KeyStore("unused:9092", "profile-keys", MasterKey.from_env(True),
                    send=lambda topic, row, wrapped: sender.send(topic, row, wrapped, first=True),
                    shelf=RocksWrappedKeys(Path(tempfile.gettempdir()) / "dfdg-profile-keys", KEY_SHELF_WRITE_BUFFER,
                                           KEY_SHELF_BLOCK_CACHE))
    keys._loaded.set()  # no topic to read: every citizen is new
    sealer = Sealer(keys, True)
    codec, metrics, clock = Codec.default(), Metrics(), ManualClock(datetime.now(UTC))

    async def no_topic(name: str) -> None:
        return None

    outputs = KafkaOutputs(codec, lambda t, k, v, h: sender.send(t, k, v, h), no_topic)
    dead_letters = DeadLetters(sender, sealer, metrics, "profile")
    repo = CitizenRepository({}, sealer, _Changelog(sender.send))  # type: ignore[arg-type]
    saga = SagaRunner(outputs, sender, codec, sealer, "unused", metrics, CrashPoints(""), SagaWatch())
    # The combined worker's hand-off (streams.handoff): N up to its capacity is all handed over.
    handoff = DecodedHandOff(lambda: range(4))  # the step reads every partition
    door = Door(codec, sealer, sender, dead_letters, metrics, clock, DEV_PSEUDONYM_KEY, "profile.citizen-events",
                handoff)
    step = CitizenStep(repo, sealer, codec, outputs, dead_letters, saga, DeadlineIndex(), metrics, clock,
                       "profile.archive-receipts", CrashPoints(""), handoff)
    return door, step, producer, clock


def _due_records(step: Any, clock: Any) -> dict[int, list[Any]]:
    """Each citizen's R3.1 deadline as the timer sends it (``DeadlineTimer.fire_due``), by
    partition; the clock is moved a minute past the latest of them."""
    from processors.clock import passed_at
    from processors.events import DeadlineDue
    from processors.lifecycle_policy import RULE_HANDOVER
    from processors.model import deterministic_id
    from streams.consumed import ConsumedMessage

    codec = step._codec
    due: dict[int, list[Any]] = {}
    latest = clock.now()
    for key in step._repo.citizen_keys():
        header = step._repo.header(key)
        for deadline in header.pending if header is not None else ():
            if deadline.rule == RULE_HANDOVER:
                latest = max(latest, passed_at(deadline.due_date))
                event = DeadlineDue(event_id=deterministic_id("deadline-due", key.decode(), deadline.deadline_id),
                                    occurred_at=clock.now(), producer="profile", deadline_id=deadline.deadline_id,
                                    rule=deadline.rule, due_date=deadline.due_date, case_id=deadline.case_id)
                messages = due.setdefault(header.partition, [])
                messages.append(ConsumedMessage("profile.citizen-events", header.partition, 10**6 + len(messages),
                                                time.time(), key, codec.encode(event), tuple(codec.headers_for(event))))
    clock.set(latest + timedelta(minutes=1))
    return due


async def run(n: int, due_only: bool = False) -> tuple[float, float, float]:
    """(door, step, due deadline) CPU seconds per event."""
    from schemas.codec import Codec
    from streams.consumed import ConsumedMessage

    codec = Codec.default()
    ingress = [ConsumedMessage("dfdg.case-created", 0, i, time.time(), cpr.encode(), codec.encode(event), ())
               for i, (cpr, event) in enumerate(case_created_batch(n, "profile-steps"))]
    door, step, producer, clock = _build()
    started = time.process_time()
    for i in range(0, n, BATCH):
        await door.handle(ingress[i:i + BATCH])
    door_s = time.process_time() - started
    hop = [(tp[1], r) for tp, rows in producer.records.items() if tp[0] == "profile.citizen-events" for r in rows]
    by_partition: dict[int, list[ConsumedMessage]] = {}
    for offset, (partition, (key, value, headers)) in enumerate(hop):
        by_partition.setdefault(partition, []).append(
            ConsumedMessage("profile.citizen-events", partition, offset, time.time(), key, value, tuple(headers)))
    started = time.process_time()
    for partition, messages in by_partition.items():
        for i in range(0, len(messages), BATCH):
            await step.handle(partition, messages[i:i + BATCH])
    step_s = time.process_time() - started
    profiler = _start_profiler() if due_only else None
    started = time.process_time()
    fired = 0
    for partition, messages in _due_records(step, clock).items():
        for i in range(0, len(messages), BATCH):
            await step.handle(partition, messages[i:i + BATCH])
            fired += len(messages[i:i + BATCH])
    due_s = time.process_time() - started
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return door_s / n, step_s / n, due_s / max(fired, 1)


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    return profiler


def main() -> None:
    from streams.step_policy import GC_THRESHOLDS

    # The worker's collector settings (streams.bootstrap): at Python's defaults a full collection
    # over the rows held here lands in the middle of a phase and is counted as the step's.
    gc.set_threshold(*GC_THRESHOLDS)
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 4000
    if "--profile" in sys.argv:
        profiler = _start_profiler()
        door, step, due = asyncio.run(run(n))
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        asyncio.run(run(500))  # warm the caches and imports
        door, step, due = asyncio.run(run(n, due_only="--due" in sys.argv))
    print(f"door {door * 1e6:.0f} us/event, citizen step {step * 1e6:.0f} us/event, "
          f"together {(door + step) * 1e6:.0f} us/event => at most {1 / (door + step):.0f} ev/s on one core; "
          f"a due deadline {due * 1e6:.0f} us => at most {1 / due:.0f}/s")


if __name__ == "__main__":
    main()
