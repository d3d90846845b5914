"""End to end: events/s and publish -> subscriber-topic latency, for the real worker, a raw
aiokafka passthrough (the ceiling for a Python consumer) and the same routing in Quix Streams.

Same broker, same pre-encoded CaseCreated messages (one new citizen each, one notification
each), same partition count. ``split`` is the worker as two processes (``DFDG_ROLE=steps`` and
``DFDG_ROLE=door``), the deployment that gives the door a core of its own. Each variant runs in
its own process (``split`` in two) and gets a warm-up at the low rate, then a phase at the low
rate, a phase at the target's rate and a phase at saturation (everything published as fast as
the benchmark's producer can).

Latency = the output message's LogAppendTime (the broker's clock when the notification was
appended to the subscriber's topic; the benchmark creates the output topics with
``message.timestamp.type=LogAppendTime``) minus the CreateTime the benchmark stamps on the input
message when it hands it to its producer. One machine, one clock. Throughput = messages out /
(last LogAppendTime out - first CreateTime in).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.common import REPO, Context, Figure, WorkerProcesses, case_created_batch

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["publish", "run"]

LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}


@dataclass
class Phase:
    name: str
    count: int
    throughput: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Variant:
    name: str
    source: str
    sink: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], None]


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _ensure(bootstrap: str, names: list[str], partitions: int, config: dict[str, str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from streams.topics import TopicSpec, ensure_topics

    await ensure_topics(bootstrap, [TopicSpec(n, partitions, config) for n in names])
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # an existing topic (the real subscriber topic) gets the timestamp type too
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, n, configs=config) for n in names])
    finally:
        await admin.close()


async def _delete(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in existing if any(n == x or n.startswith(x) for x in names)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def _skip_backlog(bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
    """Commit the group's offsets at the topics' ends, so a fresh worker skips older runs' messages."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in ends.items()})
    finally:
        await consumer.stop()


Message = tuple[bytes, bytes, bytes, list[tuple[str, bytes]]]


async def _phase(bootstrap: str, partitions: int, variant: Variant, name: str, messages: list[Message],
                 rate: float | None, timeout_s: float) -> Phase:
    """Publish ``messages`` (key, citizen key, value, headers) and collect their outputs."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    sent: dict[bytes, int] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(variant.sink, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp, off in (await consumer.end_offsets(tps)).items():
        consumer.seek(tp, off)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, linger_ms=1)
    await producer.start()
    arrived: dict[bytes, int] = {}

    async def collect() -> None:
        deadline = time.monotonic() + timeout_s
        while len(arrived) < len(messages) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=2000)).values():
                for msg in records:
                    if msg.key in sent and msg.key not in arrived:
                        arrived[msg.key] = msg.timestamp

    collector = asyncio.create_task(collect())
    await publish(producer, variant.source, messages, rate, sent)
    await collector
    await producer.stop()
    await consumer.stop()
    lat = sorted(float(t - sent[k]) for k, t in arrived.items())
    first_in = min(sent.values()) if sent else 0
    span_s = max(1e-3, (max(arrived.values()) - first_in) / 1000) if arrived else float("nan")
    return Phase(name, len(arrived), len(arrived) / span_s, _pct(lat, 0.5), _pct(lat, 0.99),
                 lat[-1] if lat else float("nan"))


async def publish(producer: AIOKafkaProducer, topic: str, messages: list[Message], rate: float | None,
                  sent: dict[bytes, int]) -> None:
    """Send ``messages`` to ``topic`` at ``rate`` a second (None: as fast as the producer takes
    them) and wait until the broker has them all. Each is stamped with the time it is handed to
    the producer, as its CreateTime and in ``sent`` under both its keys: a passthrough's output
    keeps the message's key, the worker's the citizen's."""
    started = time.monotonic()
    for i, (key, citizen, value, headers) in enumerate(messages):
        if rate is not None and (wait := started + i / rate - time.monotonic()) > 0.002:
            await asyncio.sleep(wait)
        stamp = int(time.time() * 1000)
        sent[key] = sent[citizen] = stamp
        await producer.send(topic, value, key=key, headers=headers, timestamp_ms=stamp)
    await producer.flush()


def _encode(batch: list[tuple[str, object]]) -> list[Message]:
    from schemas.codec import Codec
    from streams.pseudonym import citizen_key
    from streams.settings import DEV_PSEUDONYM_KEY

    codec = Codec.default()
    return [(event.event_id.encode(), citizen_key(DEV_PSEUDONYM_KEY, cpr).encode(),  # type: ignore[attr-defined]
             codec.encode(event), codec.headers_for(event)) for cpr, event in batch]


def run(ctx: Context) -> list[Figure]:
    return asyncio.run(_run(ctx))


async def _run(ctx: Context) -> list[Figure]:
    from processors.routing import topic_for_subscriber
    from streams.topics import ensure_topics, pipeline_topics

    n_rate = ctx.size("pipeline_rate_events", 20_000, 2_000)
    # Half the target's rate too: what the latency is where the machine is not at its capacity.
    n_low = ctx.size("pipeline_low_rate_events", 10_000, 1_000)
    low_rate = float(ctx.size("pipeline_low_rate_per_s", 1_000, 1_000))
    n_sat = ctx.size("pipeline_saturation_events", 40_000, 4_000)
    rate = float(ctx.size("pipeline_rate_per_s", 2_000, 2_000))
    parts, bs, run_id = ctx.partitions, ctx.bootstrap, ctx.run_id
    # At the low rate, like the trace's (benchmarks.latency_bench): a worker or broker just
    # started is several times slower for its first seconds, and that is not what a phase measures.
    warm = _encode(case_created_batch(ctx.size("pipeline_warm_events", 3_000, 300), f"warm-{run_id}"))
    fixed = _encode(case_created_batch(n_rate, f"rate-{run_id}"))
    low = _encode(case_created_batch(n_low, f"low-{run_id}"))
    sat = _encode(case_created_batch(n_sat, f"sat-{run_id}"))
    prefix = f"bench-{run_id}"
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def child(name: str, *args: str) -> Callable[[], Awaitable[None]]:
        async def start() -> None:
            procs[name] = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return start

    def stopper(name: str) -> Callable[[], None]:
        def stop() -> None:
            proc = procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
        return stop

    worker = WorkerProcesses(bs, prefix, ctx.workdir, parts, split=False)
    split_app = f"{prefix}-split"
    split = WorkerProcesses(bs, split_app, ctx.workdir, parts, split=True)

    async def start_worker() -> None:
        await ensure_topics(bs, pipeline_topics(parts))
        await _skip_backlog(bs, prefix, ["dfdg.case-created"], parts)
        await worker.start()

    async def start_split() -> None:
        await _skip_backlog(bs, split_app, ["dfdg.case-created"], parts)
        await split.start()

    notify = topic_for_subscriber("jobcenter:851")
    variants = [
        Variant("raw", f"{prefix}-raw-in", f"{prefix}-raw-out",
                child("raw", "benchmarks.passthrough", bs, f"{prefix}-raw-in", f"{prefix}-raw-out", f"{prefix}-raw"),
                stopper("raw")),
        Variant("quix", f"{prefix}-quix-in", f"{prefix}-quix-out",
                child("quix", "benchmarks.quix_app", bs, f"{prefix}-quix-in", f"{prefix}-quix-out", f"{prefix}-quix",
                      str(ctx.workdir / "quix-state")), stopper("quix")),
        Variant("pipeline", "dfdg.case-created", notify, start_worker, worker.stop),
        Variant("split", "dfdg.case-created", notify, start_split, split.stop),
    ]
    await _ensure(bs, [f"{prefix}-raw-in", f"{prefix}-quix-in"], parts, {})
    await _ensure(bs, [f"{prefix}-raw-out", f"{prefix}-quix-out", notify], parts, LOG_APPEND)
    results: dict[str, dict[str, Phase]] = {}
    try:
        for v in variants:
            await v.start()
            try:
                w = await _phase(bs, parts, v, "warm-up", warm, low_rate, 180 + len(warm) / low_rate)
                if w.count < len(warm):
                    raise RuntimeError(f"{v.name}: only {w.count}/{len(warm)} warm-up messages came out")
                results[v.name] = {
                    "low": await _phase(bs, parts, v, "low", low, low_rate, 60 + 3 * n_low / low_rate),
                    "rate": await _phase(bs, parts, v, "rate", fixed, rate, 60 + 3 * n_rate / rate),
                    "sat": await _phase(bs, parts, v, "sat", sat, None, 120 + n_sat / 200),
                }
            finally:
                v.stop()
    finally:
        worker.stop()
        split.stop()
        for name in procs:
            stopper(name)()
        await _delete(bs, [f"{prefix}-"])
        shutil.rmtree(ctx.workdir / "quix-state", ignore_errors=True)
    return _figures(results, rate, low_rate)


def _figures(results: dict[str, dict[str, Phase]], rate: float, low_rate: float) -> list[Figure]:
    figs: list[Figure] = []
    for name, phases in results.items():
        low, r, s = phases["low"], phases["rate"], phases["sat"]
        figs += [
            Figure("pipeline", f"{name} @{low_rate:.0f}/s latency p99", low.p99_ms, "ms",
                   note=f"p50 {low.p50_ms:.0f} ms, max {low.max_ms:.0f} ms, {low.throughput:,.0f} ev/s out"),
            Figure("pipeline", f"{name} @{rate:.0f}/s throughput", r.throughput, "ev/s", note=f"{r.count} out"),
            Figure("pipeline", f"{name} @{rate:.0f}/s latency p50", r.p50_ms, "ms"),
            Figure("pipeline", f"{name} @{rate:.0f}/s latency p99", r.p99_ms, "ms",
                   "< 250 ms" if name in ("pipeline", "split") else "", f"max {r.max_ms:.0f} ms"
                   + ("; door and steps in two processes" if name == "split" else "")),
            Figure("pipeline", f"{name} saturation throughput", s.throughput, "ev/s", note=f"{s.count} out"),
            Figure("pipeline", f"{name} saturation latency p99", s.p99_ms, "ms", note="includes queueing"),
        ]
    if "pipeline" in results:
        p = results["pipeline"]["sat"].throughput
        for other, target in (("raw", ">= 0.50"), ("quix", ">= 1.00")):
            if other in results:
                figs.append(Figure("pipeline", f"ratio pipeline/{other} (saturation)",
                                   p / results[other]["sat"].throughput, "x", target))
    return figs
