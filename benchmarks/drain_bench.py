"""Drain: how fast a backlog of CaseCreated is worked off, in one run, by

- ``raw``: a plain aiokafka consume -> produce passthrough (the ceiling for a Python consumer);
- ``quix``: Quix Streams running the same processors (``benchmarks/quix_app.py``);
- ``worker``: this worker (door, then the citizen step, effects first), in one process;
- ``split``: the same worker as two processes, ``DFDG_ROLE=door`` and ``DFDG_ROLE=steps``
  (streams.door_process), each step on a core of its own;
- ``baseline``: the worker as it was before the citizen step was rebuilt (commit BASELINE,
  checked out as a git worktree), measured the same way, so "x times faster" is a ratio of
  two figures from the same run on the same machine.

The worker and the baseline are drained in alternating pairs (``drain_pairs``, 3 in a full
run), after the others: on a shared 2-core machine one pair's ratio moves by a fifth between
runs of the same code, so the ratio printed is the median pair's, with each pair's beside it
(of an even number of pairs, the lower middle one). The worker's and the baseline's own figures
(rate, CPU and records per event, the ratios to raw and Quix) are that pair's.

The backlog (one new citizen each, one jobcentre notification each) is published before the
consumer starts; drain rate = outputs / (last output's LogAppendTime - first output's). For the
two workers it also counts the Kafka records written and read per event (end offsets of every
topic before and after) and the worker process's CPU time per event.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO, Context, Figure, WorkerProcesses, case_created_batch, cpu_seconds
from benchmarks.pipeline_bench import LOG_APPEND, _delete, _encode, _ensure, _skip_backlog

__all__ = ["run"]

# The last commit before the citizen step was rebuilt (issue 12's "today").
BASELINE = "b501fb6"


@dataclass
class Drain:
    count: int
    rate: float
    cpu_us: float = float("nan")
    written: float = float("nan")
    read: float = float("nan")


@dataclass
class Pair:
    """One drain of the worker and, right after it, one of the baseline (the pairs follow one
    another, with nothing drained between their halves)."""

    worker: Drain
    baseline: Drain

    @property
    def rate_ratio(self) -> float:
        return self.worker.rate / self.baseline.rate

    @property
    def cpu_ratio(self) -> float:
        """The baseline's CPU per event over the worker's: how many times less the worker spends."""
        return self.baseline.cpu_us / self.worker.cpu_us


def run(ctx: Context) -> list[Figure]:
    return asyncio.run(_run(ctx))


async def _ends(bootstrap: str, app_id: str) -> dict[tuple[str, int], int]:
    """End offsets of every topic the worker ``app_id`` can write: its own (``<app_id>...``) and
    the pipeline's shared ones (``dfdg.*``). Other runs' topics are left out: a shared broker
    keeps them, and one being deleted has no leader to answer for it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in metadata.topics() if t.startswith((app_id, "dfdg."))
               for p in (metadata.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes, bytes, list[tuple[str, bytes]]]]
                   ) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, linger_ms=5)
    await producer.start()
    try:
        for key, _, value, headers in messages:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _collect(bootstrap: str, sink: str, partitions: int, start: dict[tuple[str, int], int],
                   wanted: set[bytes], timeout_s: float) -> list[int]:
    """LogAppendTimes of the outputs keyed by one of ``wanted``, read from the sink's offsets in ``start``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(sink, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, start.get((sink, tp.partition), 0))
    times: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(times) < len(wanted) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for msg in records:
                    if msg.key in wanted and msg.key not in times:
                        times[msg.key] = msg.timestamp
    finally:
        await consumer.stop()
    return sorted(times.values())


def _rate(times: list[int]) -> float:
    return len(times) / max(1e-3, (times[-1] - times[0]) / 1000) if len(times) > 1 else float("nan")


async def _drain_child(ctx: Context, name: str, args: list[str], source: str, sink: str, n: int,
                       keyed_by_citizen: bool) -> Drain:
    """``keyed_by_citizen``: the child's outputs carry the citizen key (Quix, like the worker);
    else the input's own key (the raw passthrough). Waiting for both kinds would wait for n
    outputs that never come, until the timeout."""
    messages = _encode(case_created_batch(n, f"drain-{name}-{ctx.run_id}"))
    await _ensure(ctx.bootstrap, [source], ctx.partitions, {})
    await _ensure(ctx.bootstrap, [sink], ctx.partitions, LOG_APPEND)
    await _publish(ctx.bootstrap, source, messages)
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wanted = {m[1] if keyed_by_citizen else m[0] for m in messages}
        times = await _collect(ctx.bootstrap, sink, ctx.partitions, {}, wanted, 120 + n / 100)
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return Drain(len(times), _rate(times), cpu_us=cpu / max(1, len(times)) * 1e6)


async def _drain_worker(ctx: Context, name: str, repo: Path, n: int, split: bool = False) -> Drain:
    """``split``: the door and the steps in two processes (DFDG_ROLE); CPU is the sum of both."""
    from processors.routing import topic_for_subscriber
    from streams.topics import ensure_topics, pipeline_topics

    app_id = f"drain-{name}-{ctx.run_id}"
    sink = topic_for_subscriber("jobcenter:851")
    await ensure_topics(ctx.bootstrap, pipeline_topics(ctx.partitions))
    await _ensure(ctx.bootstrap, [sink], ctx.partitions, LOG_APPEND)
    await _skip_backlog(ctx.bootstrap, app_id, ["dfdg.case-created"], ctx.partitions)
    messages = _encode(case_created_batch(n, f"drain-{name}-{ctx.run_id}"))
    await _publish(ctx.bootstrap, "dfdg.case-created", messages)
    before = await _ends(ctx.bootstrap, app_id)
    workers = WorkerProcesses(ctx.bootstrap, app_id, ctx.workdir, ctx.partitions, split, repo=repo)
    try:
        await workers.start()
        cpu_ready = sum(map(cpu_seconds, workers.pids()))
        times = await _collect(ctx.bootstrap, sink, ctx.partitions, before, {m[1] for m in messages}, 120 + n / 50)
        await asyncio.sleep(2.0)  # the last batch's state rows and commits
        cpu = sum(map(cpu_seconds, workers.pids())) - cpu_ready
    finally:
        workers.stop()
    after = await _ends(ctx.bootstrap, app_id)
    delta = {tp: after[tp] - before.get(tp, 0) for tp in after if after[tp] > before.get(tp, 0)}
    written = sum(d for (topic, _), d in delta.items() if topic != "dfdg.case-created")
    # What the worker reads back: its internal hop and the key topic it follows (the ingress
    # backlog itself is the one read every pipeline must do).
    read_back = sum(d for (topic, _), d in delta.items() if app_id in topic and "changelog" not in topic
                    and "__assignor" not in topic)
    done = max(1, len(times))
    return Drain(len(times), _rate(times), cpu_us=cpu / done * 1e6, written=written / done,
                 read=1 + read_back / done)


def _baseline_checkout(workdir: Path) -> Path | None:
    target = workdir / "baseline"
    made = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(target), BASELINE],
                          capture_output=True, text=True)
    if made.returncode != 0:
        print(f"drain: no baseline worker ({BASELINE} not in this clone: {made.stderr.strip()[:200]})")
        return None
    return target


def _remove_checkout(target: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(target)], capture_output=True)
    shutil.rmtree(target, ignore_errors=True)


async def _run(ctx: Context) -> list[Figure]:
    n = ctx.size("drain_events", 20_000, 3_000)
    pairs_wanted = ctx.size("drain_pairs", 3, 1)
    prefix = f"bench-{ctx.run_id}-drain"
    bs = ctx.bootstrap
    results: dict[str, Drain] = {}
    pairs: list[Pair] = []
    baseline = _baseline_checkout(ctx.workdir)
    try:
        results["raw"] = await _drain_child(ctx, "raw", ["benchmarks.passthrough", bs, f"{prefix}-raw-in",
                                                         f"{prefix}-raw-out", f"{prefix}-raw"],
                                            f"{prefix}-raw-in", f"{prefix}-raw-out", n, keyed_by_citizen=False)
        results["quix"] = await _drain_child(ctx, "quix", ["benchmarks.quix_app", bs, f"{prefix}-quix-in",
                                                           f"{prefix}-quix-out", f"{prefix}-quix",
                                                           str(ctx.workdir / "quix-drain")],
                                             f"{prefix}-quix-in", f"{prefix}-quix-out", n, keyed_by_citizen=True)
        results["split"] = await _drain_worker(ctx, "split", REPO, n, split=True)
        for i in range(pairs_wanted if baseline is not None else 1):
            worker = await _drain_worker(ctx, f"worker{i}", REPO, n)
            if baseline is None:
                results["worker"] = worker
            else:
                pairs.append(Pair(worker, await _drain_worker(ctx, f"baseline{i}", baseline, n)))
    finally:
        if baseline is not None:
            _remove_checkout(baseline)
        await _delete(bs, [prefix])
    if pairs:
        # The worker's and the baseline's own figures (rate, CPU, records) are the median pair's,
        # so that any two of them printed side by side come from one pair.
        middle = _median_pair(pairs)
        results["worker"], results["baseline"] = middle.worker, middle.baseline
    return _figures(results, n) + _pair_figures(pairs)


def _median_pair(pairs: list[Pair]) -> Pair:
    """The pair of median worker / baseline ratio (of an even number, the lower middle one)."""
    return sorted(pairs, key=lambda p: p.rate_ratio)[(len(pairs) - 1) // 2]


def _lower_median(values: list[float]) -> float:
    return sorted(values)[(len(values) - 1) // 2]


def _pair_figures(pairs: list[Pair]) -> list[Figure]:
    if not pairs:
        return []
    rates = [p.rate_ratio for p in pairs]
    cpus = [p.cpu_ratio for p in pairs]
    each = ", ".join(f"{r:.2f}" for r in rates)
    at_floor = sum(r >= 5 for r in rates)
    return [Figure("drain", "ratio worker/baseline", _median_pair(pairs).rate_ratio, "x", ">= 5",
                   note=f"the median of {len(pairs)} alternating pairs: {each}; {at_floor} at or above 5"),
            Figure("drain", "ratio CPU per event baseline/worker", _lower_median(cpus), "x",
                   note=f"the median of {len(pairs)} pairs: " + ", ".join(f"{c:.2f}" for c in cpus))]


def _figures(results: dict[str, Drain], n: int) -> list[Figure]:
    figs = [Figure("drain", f"{name} drain rate", d.rate, "ev/s", note=f"{d.count}/{n} out")
            for name, d in results.items()]
    worker = results.get("worker")
    if worker is None:
        return figs
    for other, target in (("raw", ">= 0.25"), ("quix", ">= 1.5"), ("baseline", ">= 5")):
        if other in results:
            if other != "baseline":  # the worker's own: _pair_figures, pair by pair
                figs.append(Figure("drain", f"ratio worker/{other}", worker.rate / results[other].rate, "x", target))
            if "split" in results:
                figs.append(Figure("drain", f"ratio split/{other}", results["split"].rate / results[other].rate,
                                   "x", target, note="door and steps in two processes"))
    for name in ("worker", "split", "baseline"):
        if name in results:
            d = results[name]
            figs += [Figure("drain", f"{name} CPU per event", d.cpu_us, "us"),
                     Figure("drain", f"{name} records written per event", d.written, "records"),
                     Figure("drain", f"{name} records read per event", d.read, "records")]
    if "raw" in results:
        figs.append(Figure("drain", "raw CPU per event", results["raw"].cpu_us, "us"))
    return figs
