"""Profile the worker's per-event CPU path without Kafka: admit (decode, validate, pseudonymise),
then decode again, load state, process, persist state and deadline row, rebuild the index
entries, encode the notification. ``python -m benchmarks.profile_hot [N]`` prints pyinstrument's
tree and the per-event cost."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from benchmarks.common import case_created_batch


def hot_path(n: int) -> float:
    from processors.model import CitizenState
    from processors.pipeline import process
    from processors.state_codec import state_from_dict, state_to_dict
    from schemas.codec import Codec
    from sinks.kafka_out import notification_for
    from streams.deadlines import DeadlineIndex, decode_row, encode_row
    from streams.ingest import Admitted, admit
    from streams.settings import DEV_PSEUDONYM_KEY

    codec = Codec.default()
    values = [codec.encode(e) for _, e in case_created_batch(n, "profile")]
    store: dict[bytes, bytes] = {}
    rows: dict[bytes, bytes] = {}
    index = DeadlineIndex()
    started = time.perf_counter()
    for value in values:
        now = datetime.now(UTC)
        result = admit(value, codec, DEV_PSEUDONYM_KEY, now)  # the ingest agent
        assert isinstance(result, Admitted)
        key = result.citizen_key.encode()
        event = codec.decode(value)  # the citizen agent decodes again
        raw = store.get(key)
        before = state_from_dict(json.loads(raw)) if raw else CitizenState(citizen_key=key.decode())
        outcome = process(before, event, now)  # type: ignore[arg-type]
        store[key] = json.dumps(state_to_dict(outcome.state), separators=(",", ":")).encode()
        rows[key] = encode_row(0, outcome.state.pending.values())
        pending = outcome.state.pending.values()
        index.replace_citizen(key.decode(), list(decode_row(key.decode(), encode_row(0, pending))))
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
