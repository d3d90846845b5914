"""Run in a fresh process so its RSS is the index's alone: build 1M ``citizens`` table rows
(``streams.citizen_rows``; the header lists the pending deadline, the sealed state is left
empty as the rebuild never opens it), rebuild the DeadlineIndex from their clear headers the
way the worker does (``DeadlineTimer.rebuild`` over ``CitizenRepository.headers``), pop the
due ones and encode each as the DeadlineDue the worker sends. Prints one JSON object."""

from __future__ import annotations

import gc
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta

from benchmarks.common import rss_mib


def main(pending: int, due: int) -> None:
    from processors.events import DeadlineDue
    from processors.model import Deadline, deterministic_id
    from schemas.codec import Codec
    from streams.citizen_repo import CitizenRepository
    from streams.citizen_rows import RowHeader, encode_row
    from streams.deadlines import DeadlineIndex

    codec = Codec.default()
    codec.encode  # noqa: B018 - load the schemas before the baseline
    gc.collect()
    base = rss_mib()
    today = date.today()
    past, future = today - timedelta(days=2), today + timedelta(days=60)
    # One pending deadline per citizen: the worst case for per-citizen overhead in the index.
    rows = {f"{i:032x}".encode(): encode_row(RowHeader(i % 4, (Deadline(rule="R2.1:CV", due_date=past if i < due
                                                                          else future, case_id=f"case-{i}"),)), b"")
            for i in range(pending)}
    rows_mib = rss_mib() - base
    index = DeadlineIndex()
    repo = CitizenRepository(rows, sealer=None)  # type: ignore[arg-type] - the headers are read in clear
    started = time.perf_counter()
    index.rebuild((key, h.partition, h.pending, 0) for key, h in repo.headers() if not h.erased)
    rebuild_s = time.perf_counter() - started
    del rows, repo
    gc.collect()
    index_mib = rss_mib() - base
    now = datetime.now(UTC)
    started = time.perf_counter()
    popped = []
    while True:
        batch = index.pop_due(now, {0, 1, 2, 3})
        if not batch:
            break
        popped.extend(batch)
    pop_s = time.perf_counter() - started
    started = time.perf_counter()
    for entry in popped:
        record = DeadlineDue(event_id=deterministic_id("deadline-due", entry.citizen_key, entry.deadline_id),
                             occurred_at=now, producer="bench-deadlines", deadline_id=entry.deadline_id,
                             rule=entry.rule, due_date=datetime.fromisoformat(entry.due_date).date(),
                             case_id=entry.case_id)
        codec.encode(record)
        codec.headers_for(record)
    encode_s = time.perf_counter() - started
    print(json.dumps({"pending": len(index) + len(popped), "rows_mib": rows_mib, "index_mib": index_mib,
                      "rss_mib": rss_mib(), "rebuild_s": rebuild_s, "popped": len(popped), "pop_s": pop_s,
                      "encode_s": encode_s}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
