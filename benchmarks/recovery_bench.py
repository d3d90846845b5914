"""Recovery: a new worker restores N citizens from the changelogs into RocksDB and rebuilds its
deadline index; timed from process start to the log line "deadline index rebuilt".

The changelog is written directly, in the table's format: ``<app_id>-citizens-changelog``, one
row per citizen (key = citizen key, value = ``streams.citizen_rows.encode_row``: a clear header
with the partition and the citizen's one pending deadline, so N citizens = N pending, then the
``state_to_dict`` JSON of a citizen with one open case). The state is written unsealed (the
worker opens an unsealed state as is, and only when an event for the citizen arrives; the
rebuild reads the headers alone), so no key topic is needed. Partitions are chosen with Kafka's
murmur2 key partitioner, as the worker's producer does. The worker's RSS after recovery is the
"worker holding N pending" figure.
"""

from __future__ import annotations

import asyncio
import json
import time

from benchmarks.common import Context, Figure, WorkerChild, case_created_batch

__all__ = ["run"]


def _template(rule: str | None = None) -> tuple[dict[str, object], str]:
    """A new citizen's state with one open case, keeping one pending deadline: ``rule``'s, or the first."""
    from datetime import UTC, datetime

    from processors.model import CitizenState
    from processors.pipeline import process
    from processors.state_codec import state_to_dict
    from schemas.codec import Codec
    from streams.ingest import Admitted, admit
    from streams.settings import DEV_PSEUDONYM_KEY

    cpr, event = case_created_batch(1, "recovery-template")[0]
    now = datetime.now(UTC)
    admitted = admit(Codec.default().encode(event), Codec.default(), DEV_PSEUDONYM_KEY, now, "dfdg.case-created")
    assert isinstance(admitted, Admitted)
    state = process(CitizenState(citizen_key=admitted.citizen_key), admitted.event, now).state
    data = state_to_dict(state)
    pending = data["pending"]
    assert isinstance(pending, dict)
    first = next(i for i, d in pending.items() if rule is None or d["rule"] == rule)
    data["pending"] = {first: pending[first]}
    return data, cpr


async def _write(ctx: Context, app_id: str, citizens: int, rule: str | None = None) -> float:
    """N citizens' rows on the changelog, each with one pending deadline (``rule``'s, or the first);
    citizen ``i`` has the key ``f"{i:032x}"``."""
    from datetime import date

    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import murmur2

    from processors.model import Deadline
    from streams.citizen_rows import RowHeader, encode_row
    from streams.topics import TopicSpec, ensure_topics

    parts = ctx.partitions
    compact = {"cleanup.policy": "compact"}
    table_topic = f"{app_id}-citizens-changelog"
    await ensure_topics(ctx.bootstrap, [TopicSpec(table_topic, parts, compact)])
    data, cpr = _template(rule)
    (_, d), = data["pending"].items()  # type: ignore[attr-defined]
    pending = (Deadline(rule=d["rule"], due_date=date.fromisoformat(d["due_date"]), case_id=d["case_id"]),)
    headers = [RowHeader(p, pending) for p in range(parts)]
    template = json.dumps(data, separators=(",", ":"))
    old_key = str(data["citizen_key"])
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(citizens):
            key = f"{i:032x}"
            kb = key.encode()
            partition = (murmur2(kb) & 0x7FFFFFFF) % parts
            fake_cpr = f"{(i % 280000) + 10100000:08d}{i % 100:02d}"  # synthetic, CPR-shaped only
            state = template.replace(old_key, key).replace(cpr, fake_cpr).encode()
            await producer.send(table_topic, encode_row(headers[partition], state), key=kb, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def run(ctx: Context) -> list[Figure]:
    from benchmarks.pipeline_bench import _skip_backlog
    from schemas.topics import CITIZEN_EVENTS
    from streams.topics import ensure_topics, pipeline_topics

    citizens = ctx.size("recovery_citizens", 1_000_000, 20_000)
    app_id = f"bench-{ctx.run_id}-recovery"
    asyncio.run(ensure_topics(ctx.bootstrap, pipeline_topics(ctx.partitions)))
    asyncio.run(_skip_backlog(ctx.bootstrap, app_id, ["dfdg.case-created", CITIZEN_EVENTS], ctx.partitions))
    write_s = asyncio.run(_write(ctx, app_id, citizens))
    worker = WorkerChild(ctx.bootstrap, app_id, ctx.workdir / "recovery-worker", ctx.partitions).start()
    try:
        ready_s = worker.wait_for("deadline index rebuilt", 600 + citizens / 500)
        time.sleep(1.0)
        rss = worker.rss_mib()
        pending = next((json.loads(line).get("pending") for line in worker.lines
                        if "deadline index rebuilt" in line and line.startswith("{")), None)
    finally:
        worker.stop()
    return [
        Figure("recovery", "write changelogs (bench producer)", write_s, "s",
               note=f"{citizens} citizens, one citizens-table row each"),
        Figure("recovery", "fresh worker: start -> index rebuilt", ready_s, "s",
               note=f"{citizens} citizens, RocksDB, {ctx.partitions} partitions; includes ~process start"),
        Figure("recovery", "restore rate", citizens / ready_s, "citizens/s"),
        Figure("recovery", "worker RSS after recovery", rss, "MiB", "< 1024 MiB with 1M pending",
               f"index holds {pending} pending"),
    ]
