"""The pipeline's routing written with Quix Streams, for comparison: decode, validate and
pseudonymise (``streams.ingest.admit``), repartition by citizen key (``group_by``, like the
worker's internal topic), then per citizen: load its row, ``processors.pipeline.process``, save
the row (``streams.citizen_rows``: pending deadlines in the header, state beside it, as the
worker's ``citizens`` table holds them; not sealed), and emit the notifications encoded by our
codec.

Run as ``python -m benchmarks.quix_app BOOTSTRAP IN OUT GROUP STATE_DIR``; stops on SIGTERM.
Every message goes to OUT (one subscriber topic), keyed by citizen key."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any


def main(bootstrap: str, source: str, sink: str, group: str, state_dir: str) -> None:
    from quixstreams import Application

    from processors.model import CitizenState
    from processors.pipeline import process
    from schemas.codec import Codec
    from sinks.kafka_out import notification_for
    from streams.citizen_rows import RowHeader, decode_row, encode_row, state_from_json, state_to_json
    from streams.ingest import Admitted, admit
    from streams.settings import DEV_PSEUDONYM_KEY

    codec = Codec.default()
    app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                      state_dir=state_dir, loglevel="WARNING", commit_interval=1.0,
                      producer_extra_config={"linger.ms": 1, "acks": "all"})
    tin = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    tout = app.topic(sink, key_serializer="str", value_serializer="bytes")

    def citizen_of(value: bytes) -> str:
        result = admit(value, codec, DEV_PSEUDONYM_KEY, datetime.now(UTC), "dfdg.case-created")
        return result.citizen_key if isinstance(result, Admitted) else ""

    def on_citizen(value: bytes, key: Any, timestamp: int, headers: Any, state: Any) -> list[bytes]:
        if not key:
            return []  # refused at the door; the worker would dead-letter it
        now = datetime.now(UTC)
        event = codec.decode(value)
        row = state.get_bytes("r")
        before = state_from_json(decode_row(row)[1]) if row is not None else CitizenState(citizen_key=key)
        outcome = process(before, event, now)  # type: ignore[arg-type]
        if outcome.state != before:
            header = RowHeader(0, tuple(outcome.state.pending.values()))
            state.set_bytes("r", encode_row(header, state_to_json(outcome.state)))
        return [codec.encode(notification_for(d, outcome.state, now)) for d in outcome.deliveries]

    sdf = app.dataframe(tin)
    sdf = sdf.group_by(citizen_of, name="citizen", key_serializer="str", key_deserializer="str",
                       value_serializer="bytes", value_deserializer="bytes")
    sdf = sdf.apply(on_citizen, stateful=True, metadata=True, expand=True)
    sdf.to_topic(tout)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:6])
