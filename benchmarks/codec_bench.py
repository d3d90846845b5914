"""Codec: records/s to encode and decode CaseCreated with our codec vs plain fastavro.

Plain fastavro gets its best case: dicts already in Avro shape, no header, no class. Our
codec includes the dataclass <-> dict conversion, the 10-byte single-object header and the
fingerprint lookup, which is what the worker pays per message.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

from benchmarks.common import Context, Figure, case_created_batch

__all__ = ["run"]


def _rate(fn: Callable[[], None], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n / best


def run(ctx: Context) -> list[Figure]:
    from fastavro import parse_schema, schemaless_reader, schemaless_writer

    from processors.events import CaseCreated
    from schemas import convert
    from schemas.codec import Codec

    n = ctx.size("codec_records", 50_000, 5_000)
    codec = Codec.default()
    records = [event for _, event in case_created_batch(n, f"codec-{ctx.run_id}")]
    schema = parse_schema(json.loads(codec.schema_json(codec.full_name(CaseCreated))))
    to_avro = convert.to_avro(CaseCreated)
    dicts = [to_avro(r) for r in records]
    ours = [codec.encode(r) for r in records]
    plain: list[bytes] = []
    for d in dicts:
        buf = io.BytesIO()
        schemaless_writer(buf, schema, d)
        plain.append(buf.getvalue())

    def codec_encode() -> None:
        for r in records:
            codec.encode(r)

    def fastavro_encode() -> None:
        for d in dicts:
            buf = io.BytesIO()
            schemaless_writer(buf, schema, d)
            buf.getvalue()

    def codec_decode() -> None:
        for b in ours:
            codec.decode(b)

    def codec_decode_dict() -> None:
        for b in ours:
            codec.decode_dict(b)

    def fastavro_decode() -> None:
        for b in plain:
            schemaless_reader(io.BytesIO(b), schema, None)

    enc_ours, enc_plain = _rate(codec_encode, n), _rate(fastavro_encode, n)
    dec_ours, dec_plain = _rate(codec_decode, n), _rate(fastavro_decode, n)
    dec_dict = _rate(codec_decode_dict, n)
    target = ">= 0.80 (within 20% of fastavro)"
    return [
        Figure("codec", "encode codec", enc_ours, "rec/s", note=f"{n} CaseCreated, {len(ours[0])} B each"),
        Figure("codec", "encode fastavro", enc_plain, "rec/s", note="dicts in Avro shape, no header"),
        Figure("codec", "encode ratio codec/fastavro", enc_ours / enc_plain, "x", target),
        Figure("codec", "decode codec", dec_ours, "rec/s", note="bytes -> frozen dataclass"),
        Figure("codec", "decode codec (dict only)", dec_dict, "rec/s", note="bytes -> dict, no dataclass"),
        Figure("codec", "decode fastavro", dec_plain, "rec/s", note="bytes -> dict"),
        Figure("codec", "decode ratio codec/fastavro", dec_ours / dec_plain, "x", target),
        Figure("codec", "decode ratio dict-only/fastavro", dec_dict / dec_plain, "x", target),
    ]
