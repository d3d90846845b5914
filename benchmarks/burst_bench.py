"""A midnight burst: N citizens whose R3.1 handover deadline is due when a worker starts, timed
from when the worker can act to the last of their notifications on the jobcentre's topic
(issue 15: 100,000 in under a minute).

The citizens' rows and data keys are written directly, as the recovery benchmark writes them
(sealed, one pending deadline each, here R3.1's); the worker starts with its clock a minute
past the deadlines' due time, restores the rows, loads the keys, and fires them all: the timer
pops due deadlines and sends ``DeadlineDue`` records to each citizen's partition, and the
citizen step handles them in batches like any event (a notification per citizen, the row
rewritten; a notify-key row only for a recipient the case's creation did not notify, as the
rows carry the ids of the notify keys published then). The clock starts at the later of "deadline index rebuilt"
and "data keys loaded" (log timestamps) and stops at the last notification's LogAppendTime.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from benchmarks.common import Context, Figure, WorkerChild

__all__ = ["run"]


def _logged(worker: WorkerChild, text: str, timeout_s: float) -> dict[str, object]:
    worker.wait_for(text, timeout_s)
    return next(json.loads(line) for line in worker.lines if text in line and line.startswith("{"))


def _ms(line: dict[str, object]) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp() * 1000


def run(ctx: Context) -> list[Figure]:
    from benchmarks.drain_bench import _collect, _ends
    from benchmarks.pipeline_bench import LOG_APPEND, _ensure, _skip_backlog
    from benchmarks.recovery_bench import _template, _write
    from processors.clock import passed_at
    from processors.lifecycle_policy import RULE_HANDOVER
    from processors.routing import topic_for_subscriber
    from schemas.topics import INGRESS_TOPICS
    from streams.ingress_loop import door_group
    from streams.topics import ensure_topics, pipeline_topics

    citizens = ctx.size("burst_citizens", 100_000, 10_000)
    app_id = f"bench-{ctx.run_id}-burst"
    sink = topic_for_subscriber("jobcenter:851")
    data, _ = _template(RULE_HANDOVER)
    (_, deadline), = data["pending"].items()  # type: ignore[attr-defined]
    clock = passed_at(datetime.fromisoformat(deadline["due_date"]).date()) + timedelta(minutes=1)
    asyncio.run(ensure_topics(ctx.bootstrap, pipeline_topics(ctx.partitions, app_id)))
    # The ingress topics are shared with other runs: this worker's door starts at their ends.
    asyncio.run(_skip_backlog(ctx.bootstrap, door_group(app_id), list(INGRESS_TOPICS), ctx.partitions))
    asyncio.run(_ensure(ctx.bootstrap, [sink], ctx.partitions, LOG_APPEND))
    asyncio.run(_write(ctx, app_id, citizens, RULE_HANDOVER))
    before = asyncio.run(_ends(ctx.bootstrap, app_id))
    worker = WorkerChild(ctx.bootstrap, app_id, ctx.workdir / "burst-worker", ctx.partitions,
                         {"DFDG_NOW": clock.isoformat()}).start()
    try:
        # From when the worker can act: the index rebuilt and every data key loaded (the later).
        marks = [_logged(worker, text, 600 + citizens / 500) for text in ("deadline index rebuilt", "data keys loaded")]
        ready = marks[0]
        ready_ms = max(_ms(mark) for mark in marks)
        wanted = {f"{i:032x}".encode() for i in range(citizens)}
        times = asyncio.run(_collect(ctx.bootstrap, sink, ctx.partitions, before, wanted, 600 + citizens / 100))
    finally:
        worker.stop()
    done_s = (times[-1] - ready_ms) / 1000 if times else float("nan")
    return [
        Figure("burst", f"{citizens} due deadlines: ready -> last notification", done_s, "s",
               "< 60 s for 100k", f"{len(times)}/{citizens} notifications; pending {ready.get('pending')}"),
        Figure("burst", "due deadlines handled per second", len(times) / done_s if times else 0.0, "ev/s"),
    ]
