"""Recovery: a new worker restores N citizens from the changelogs into RocksDB, loads their data
keys and rebuilds its deadline index; timed from process start to the later of the log lines
"deadline index rebuilt" and "data keys loaded".

The topics are written directly, as a worker would have left them: each citizen's data key on
``<app_id>.internal.citizen-keys`` (wrapped by the development master key) and its row on
``<app_id>-citizens-changelog`` (``streams.citizen_rows.encode_row``: a clear header with the
partition, the pending deadlines and the ids of the notify keys published when the case was
created, then the state sealed with the citizen's key). Each
citizen has one open case with its whole lifecycle pending: the nine deadlines a new case sets.
Their due dates are spread over 400 days from tomorrow on (citizen ``i`` shifted by
``i % 400`` days), so the deadline index holds the few due within its window and the rest stay
in the rows. Partitions are chosen with Kafka's murmur2 key partitioner, as the worker's
producer does. The worker's RSS after recovery is the "worker holding N x 9 pending" figure.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from benchmarks.common import Context, Figure, WorkerChild, case_created_batch

__all__ = ["run"]


_NOTIFIED_AT_CREATION: list[str] = []


def _template(rule: str | None = None, whole: bool = False) -> tuple[dict[str, object], str]:
    """A new citizen's state with one open case, keeping one pending deadline (``rule``'s, or the
    first), or with ``whole`` all of them."""
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
    outcome = process(CitizenState(citizen_key=admitted.citizen_key), admitted.event, now)
    state = outcome.state
    # Who the new case notified: the worker published their notify keys then, and its row says so.
    _NOTIFIED_AT_CREATION[:] = sorted({d.recipient for d in outcome.deliveries})
    data = state_to_dict(state)
    pending = data["pending"]
    assert isinstance(pending, dict)
    if not whole:
        first = next(i for i, d in pending.items() if rule is None or d["rule"] == rule)
        data["pending"] = {first: pending[first]}
    return data, cpr


async def _write(ctx: Context, app_id: str, citizens: int, rule: str | None = None, whole: bool = False) -> float:
    """N citizens as a worker would have left them: each one's data key on the key topic (wrapped
    by the development master key) and its row on the changelog, sealed with that key; citizen
    ``i`` has the key ``f"{i:032x}"``. Pending: ``rule``'s deadline (or the first) as the template
    has it, or with ``whole`` all of the case's, shifted by ``i % SPREAD_DAYS`` days from the
    earliest falling due tomorrow. A fresh worker loads every key, as in production."""
    from dataclasses import replace

    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import murmur2

    from schemas.topics import citizen_keys_topic
    from sinks.crypto import DataKey, MasterKey, seal
    from sinks.notify_keys import notify_key_for
    from streams.citizen_rows import encode_row
    from streams.sealing import state_aad
    from streams.topics import TopicSpec, ensure_topics

    parts = ctx.partitions
    compact = {"cleanup.policy": "compact"}
    table_topic = f"{app_id}-citizens-changelog"
    keys_topic = citizen_keys_topic(app_id)
    await ensure_topics(ctx.bootstrap, [TopicSpec(table_topic, parts, compact), TopicSpec(keys_topic, parts, compact)])
    master = MasterKey(MasterKey.DEV_KEY)  # the worker's in dev mode
    data, cpr = _template(rule, whole)
    variants = _variants(data, parts, SPREAD_DAYS if whole else 1)
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
            header, template = variants[i % len(variants)][partition]
            state = template.replace(old_key, key).replace(cpr, fake_cpr).encode()
            data_key = DataKey.generate()
            published = tuple(sorted(notify_key_for(data_key, r).key_id.hex() for r in _NOTIFIED_AT_CREATION))
            await producer.send(keys_topic, master.wrap(data_key, kb), key=f"{key}:{data_key.key_id.hex()}".encode())
            await producer.send(table_topic, encode_row(replace(header, published=published),
                                                        seal(data_key, state, state_aad(key))), key=kb,
                                partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


# Over how many days the whole-lifecycle citizens' deadlines are spread.
SPREAD_DAYS = 400


def _variants(data: dict[str, object], parts: int, days: int) -> list[list[tuple[Any, str]]]:
    """Per shift of 0..days-1 days, per partition: (row header, state JSON)."""
    from datetime import date, timedelta

    from processors.model import Deadline
    from streams.citizen_rows import RowHeader

    pending = data["pending"]
    assert isinstance(pending, dict)
    earliest = min(date.fromisoformat(d["due_date"]) for d in pending.values())
    # With more than one day, the earliest deadline of shift 0 falls due tomorrow.
    base = (date.today() + timedelta(days=1) - earliest).days if days > 1 else 0
    out = []
    for shift in range(days):
        moved = {i: {**d, "due_date": (date.fromisoformat(d["due_date"]) + timedelta(days=base + shift)).isoformat()}
                 for i, d in pending.items()}
        deadlines = tuple(Deadline(rule=d["rule"], due_date=date.fromisoformat(d["due_date"]), case_id=d["case_id"])
                          for d in moved.values())
        # The pending map is keyed by deadline id, which names the due date.
        state = {**data, "pending": {dl.deadline_id: moved[i] for dl, i in zip(deadlines, moved, strict=True)}}
        text = json.dumps(state, separators=(",", ":"))
        out.append([(RowHeader(p, deadlines), text) for p in range(parts)])
    return out


def run(ctx: Context) -> list[Figure]:
    from benchmarks.pipeline_bench import _skip_backlog
    from streams.topics import ensure_topics, pipeline_topics

    # Nine pending deadlines each: 1,111,112 citizens hold 10,000,008 (issue 15's two RSS targets,
    # a million citizens with their lifecycle and ten million pending deadlines, in one worker).
    citizens = ctx.size("recovery_citizens", 1_111_112, 20_000)
    app_id = f"bench-{ctx.run_id}-recovery"
    asyncio.run(ensure_topics(ctx.bootstrap, pipeline_topics(ctx.partitions)))
    asyncio.run(_skip_backlog(ctx.bootstrap, app_id, ["dfdg.case-created"], ctx.partitions))
    write_s = asyncio.run(_write(ctx, app_id, citizens, whole=True))
    # With a standby: the worker joining below keeps a standby copy of what this one holds.
    worker = WorkerChild(ctx.bootstrap, app_id, ctx.workdir / "recovery-worker", ctx.partitions, STANDBY).start()
    try:
        # Ready to work: the table restored and the index rebuilt, and every data key loaded.
        rebuilt_s = worker.wait_for("deadline index rebuilt", 600 + citizens / 500)
        keys_s = worker.wait_for("data keys loaded", 600 + citizens / 500)
        ready_s = max(rebuilt_s, keys_s)
        time.sleep(1.0)
        rss = worker.rss_mib()
        rebuilt = next((json.loads(line) for line in worker.lines
                        if "deadline index rebuilt" in line and line.startswith("{")), {})
        bulk = next((json.loads(line) for line in worker.lines
                     if "table restored in bulk" in line and line.startswith("{")), {})
        standby = _standby_failover(ctx, app_id, worker)
    finally:
        worker.stop()
    held, beyond = rebuilt.get("pending"), rebuilt.get("beyond_window")
    return [
        Figure("recovery", "write changelogs (bench producer)", write_s, "s",
               note=f"{citizens} citizens: a sealed row and a data key each"),
        Figure("recovery", "fresh worker: start -> index rebuilt, keys loaded", ready_s, "s",
               "< 60 s for 1M citizens",
               f"{citizens} citizens, RocksDB, {ctx.partitions} partitions; includes ~process start"),
        Figure("recovery", "  of which: table restored, index rebuilt", rebuilt_s, "s",
               note="streams.bulk_restore, then Faust's recovery of the tail, then the index"),
        Figure("recovery", "  of which: the bulk restore itself", float(bulk.get("seconds", -1)), "s",
               note=f"{bulk.get('records', 0)} changelog records read and written"),
        Figure("recovery", "  of which: data keys loaded", keys_s, "s", note="KeyStore, beside the restore"),
        Figure("recovery", "restore rate", citizens / ready_s, "citizens/s"),
        Figure("recovery", "worker RSS after recovery", rss, "MiB", "< 1024 MiB (1M citizens, 10M pending)",
               f"{citizens} citizens; deadlines held in the index {held}, left in the rows {beyond}"),
        *standby,
    ]


STANDBY = {"DFDG_STANDBY_REPLICAS": "1"}


def _logged(worker: WorkerChild, text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in list(worker.lines) if text in line and line.startswith("{")]


def _wait_count(worker: WorkerChild, text: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(_logged(worker, text)) < count:
        if time.monotonic() > deadline or (worker.proc is not None and worker.proc.poll() is not None):
            raise RuntimeError(f"worker did not log {text!r} {count}x:\n" + "\n".join(worker.lines[-30:]))
        time.sleep(0.1)


def _standby_failover(ctx: Context, app_id: str, first: WorkerChild) -> list[Figure]:
    """A second worker joins the recovered one: it restores the partitions it is given in bulk
    and follows a standby copy of the others (streams.standby_follower). Then the first is
    SIGKILLed: timed from the kill until the survivor has rebuilt its index over every
    partition, and how many changelog records it had to read for the ones it took over."""
    import os
    import signal

    second = WorkerChild(ctx.bootstrap, app_id, ctx.workdir / "recovery-standby", ctx.partitions, STANDBY).start()
    try:
        _wait_count(second, "standby copies caught up", 1, 900)
        (caught,) = _logged(second, "standby copies caught up")[:1]
        (followed,) = _logged(second, "standby copies followed")[:1]
        rebuilt = len(_logged(second, "deadline index rebuilt"))
        restored = len(_logged(second, "table restored in bulk"))
        assert first.proc is not None
        os.killpg(first.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        _wait_count(second, "deadline index rebuilt", rebuilt + 1, 600)
        failover_s = time.monotonic() - killed
        read = sum(int(x["records"]) for x in _logged(second, "table restored in bulk")[restored:])
        last_rebuild = _logged(second, "deadline index rebuilt")[-1]
        owned, rebuild_s = last_rebuild.get("partitions"), last_rebuild.get("seconds")
    finally:
        second.stop()
    records, seconds = int(caught["records"]), float(caught["seconds"])
    return [
        Figure("standby", "second worker's standby copy caught up", seconds, "s",
               note=f"{records} changelog records of partitions {followed['partitions']}, in bulk"),
        Figure("standby", "standby follow rate", records / seconds if seconds else float("nan"), "records/s",
               note="Faust's own standby path: ~2,000 records/s (its per-record recovery)"),
        Figure("standby", "failover with a standby: SIGKILL -> survivor rebuilt", failover_s, "s", "< 15 s",
               f"survivor owns {owned}; read {read} changelog records on taking over; its index rebuild "
               f"{rebuild_s} s; the 10 s session timeout included"),
    ]
