"""Profile the worker's per-event CPU path without Kafka: admit (decode, validate, pseudonymise),
then decode again, load the citizen's row (``streams.citizen_rows``: clear header and state),
process, write the row back (state and pending deadlines in one), replace the index entries,
encode the notification. Sealing is left out (the row's state is stored as plain JSON), as are
the sends. ``python -m benchmarks.profile_hot [N]`` prints pyinstrument's tree and the
per-event cost."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from benchmarks.common import case_created_batch


def hot_path(n: int) -> float:
    from processors.model import CitizenState
    from processors.pipeline import process
    from schemas.codec import Codec
    from sinks.kafka_out import notification_for
    from streams.citizen_rows import RowHeader, decode_row, encode_row, state_from_json, state_to_json
    from streams.deadlines import DeadlineIndex, entries_for
    from streams.ingest import Admitted, admit
    from streams.settings import DEV_PSEUDONYM_KEY

    codec = Codec.default()
    values = [codec.encode(e) for _, e in case_created_batch(n, "profile")]
    rows: dict[bytes, bytes] = {}  # the citizens table
    index = DeadlineIndex()
    started = time.perf_counter()
    for value in values:
        now = datetime.now(UTC)
        result = admit(value, codec, DEV_PSEUDONYM_KEY, now, "dfdg.case-created")  # the ingest agent
        assert isinstance(result, Admitted)
        key = result.citizen_key.encode()
        event = codec.decode(value)  # the citizen agent decodes again
        row = rows.get(key)
        before = state_from_json(decode_row(row)[1]) if row else CitizenState(citizen_key=key.decode())
        outcome = process(before, event, now)  # type: ignore[arg-type]
        pending = tuple(outcome.state.pending.values())
        rows[key] = encode_row(RowHeader(0, pending), state_to_json(outcome.state))
        index.replace_citizen(key.decode(), entries_for(key.decode(), 0, pending))
        for d in outcome.deliveries:
            note = notification_for(d, outcome.state, now)
            codec.encode(note)
            codec.headers_for(note)
    return (time.perf_counter() - started) / n


if __name__ == "__main__":
    from pyinstrument import Profiler

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    profiler = Profiler(interval=0.0005)
    profiler.start()
    per_event = hot_path(count)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"{per_event * 1e6:.0f} us/event in the CPU path => at most {1 / per_event:.0f} ev/s on one core")
