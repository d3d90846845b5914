"""Latency at one offered rate, split at the hop: where an event's time goes between publish
and the subscriber's topic (``--only latency``; not part of the default run).

For the worker in one process and for the split worker (``DFDG_ROLE=steps`` beside
``DFDG_ROLE=door``), ``latency_warm_events`` new cases as a warm-up, then ``latency_events``,
both published at ``latency_rate_per_s``. Each event has three times on one clock: the
CreateTime the benchmark stamps on it, the timestamp of its record on the internal hop topic
(set when the door's producer appends it, after the door's batch and its round trip for new
citizens' key rows, before the hop records are sent), and the LogAppendTime of its
notification. So "publish -> hop" is the door's part and "hop -> notification" the rest (the
hop records' acknowledgements, the step's poll, its batch's work and sends). It also counts the
half-seconds of publishing whose slowest event took over 250 ms, to tell a steady latency from
spells.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass

from benchmarks.common import Context, Figure, WorkerProcesses, case_created_batch
from benchmarks.pipeline_bench import LOG_APPEND, Message, _encode, _ensure, _pct, _skip_backlog, publish

__all__ = ["run"]

# A half-second of publishing is "slow" when its slowest event took longer than this (the p99 target).
SLOW_MS = 250
WINDOW_MS = 500


@dataclass
class Trace:
    """Published (CreateTime, under the event's key and its citizen's), and per citizen key on
    the hop and on the subscriber's topic (ms)."""

    sent: dict[bytes, int]
    hop: dict[bytes, int]
    out: dict[bytes, int]


def run(ctx: Context) -> list[Figure]:
    return asyncio.run(_run(ctx))


async def _run(ctx: Context) -> list[Figure]:
    from processors.routing import topic_for_subscriber
    from streams.topics import ensure_topics, pipeline_topics

    n = ctx.size("latency_events", 15_000, 2_000)
    rate = float(ctx.size("latency_rate_per_s", 1_000, 1_000))
    warm = ctx.size("latency_warm_events", 5_000, 300)
    sink = topic_for_subscriber("jobcenter:851")
    await ensure_topics(ctx.bootstrap, pipeline_topics(ctx.partitions))
    await _ensure(ctx.bootstrap, [sink], ctx.partitions, LOG_APPEND)
    figures: list[Figure] = []
    for variant, split in (("worker", False), ("split", True)):
        app_id = f"bench-{ctx.run_id}-latency-{variant}"
        await _skip_backlog(ctx.bootstrap, app_id, ["dfdg.case-created"], ctx.partitions)
        workers = WorkerProcesses(ctx.bootstrap, app_id, ctx.workdir, ctx.partitions, split)
        try:
            await workers.start()
            # A warm-up at the same rate: a broker started for this run, or a worker just started,
            # is several times slower for its first seconds, and that is not what this measures.
            warmed = await _trace(ctx, app_id, sink, _encode(case_created_batch(warm, f"warm-{app_id}")), rate)
            if len(warmed.out) < warm:
                raise RuntimeError(f"{variant}: only {len(warmed.out)}/{warm} warm-up messages came out")
            trace = await _trace(ctx, app_id, sink, _encode(case_created_batch(n, f"trace-{app_id}")), rate)
        finally:
            workers.stop()
        figures += _figures(variant, rate, n, trace)
    return figures


async def _trace(ctx: Context, app_id: str, sink: str, messages: list[Message], rate: float) -> Trace:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from schemas.topics import citizen_events_topic

    trace = Trace({}, {}, {})
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, acks=-1, linger_ms=1)

    async def collect() -> None:
        deadline = time.monotonic() + 120 + len(messages) / 100
        while len(trace.out) < len(messages) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200, max_records=5000)).items():
                seen = trace.out if tp.topic == sink else trace.hop
                for record in records:
                    if record.key in trace.sent:
                        seen.setdefault(record.key, record.timestamp)

    collector: asyncio.Task[None] | None = None
    try:
        await consumer.start()
        parts = range(ctx.partitions)
        hop_tps = [TopicPartition(citizen_events_topic(app_id), p) for p in parts]
        out_tps = [TopicPartition(sink, p) for p in parts]
        consumer.assign(hop_tps + out_tps)
        for tp, offset in (await consumer.end_offsets(hop_tps + out_tps)).items():
            consumer.seek(tp, offset)
        await producer.start()
        collector = asyncio.create_task(collect())
        await publish(producer, "dfdg.case-created", messages, rate, trace.sent)
        await collector
    finally:
        if collector is not None and not collector.done():
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
        await producer.stop()
        await consumer.stop()
    return trace


def _figures(variant: str, rate: float, n: int, trace: Trace) -> list[Figure]:
    done = [k for k in trace.out if k in trace.hop]
    if not done:
        return [Figure("latency", f"{variant} @{rate:.0f}/s latency p99", float("nan"), "ms", note=f"0/{n} traced")]
    total = sorted(float(trace.out[k] - trace.sent[k]) for k in done)
    door = sorted(float(trace.hop[k] - trace.sent[k]) for k in done)
    rest = sorted(float(trace.out[k] - trace.hop[k]) for k in done)
    first = min(trace.sent[k] for k in done)
    windows: dict[int, float] = {}
    for k in done:
        window = (trace.sent[k] - first) // WINDOW_MS
        windows[window] = max(windows.get(window, 0.0), float(trace.out[k] - trace.sent[k]))
    slow = sum(worst > SLOW_MS for worst in windows.values())
    label = f"{variant} @{rate:.0f}/s"
    return [
        Figure("latency", f"{label} latency p99", _pct(total, 0.99), "ms",
               note=f"p50 {_pct(total, 0.5):.0f} ms, max {total[-1]:.0f} ms, {len(done)}/{n} traced"),
        Figure("latency", f"{label} publish -> hop record p99", _pct(door, 0.99), "ms",
               note=f"p50 {_pct(door, 0.5):.0f} ms: the door's poll, batch and key rows"),
        Figure("latency", f"{label} hop record -> notification p99", _pct(rest, 0.99), "ms",
               note=f"p50 {_pct(rest, 0.5):.0f} ms: the hop's acks, the step's poll, batch and sends"),
        Figure("latency", f"{label} half-seconds whose slowest event took over {SLOW_MS} ms", float(slow), "windows",
               note=f"of {len(windows)}; in the median half-second the slowest took "
                    f"{statistics.median(windows.values()):.0f} ms"),
    ]
