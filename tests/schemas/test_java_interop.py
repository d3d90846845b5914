"""Interoperability with the Avro reference implementation (Java, avro 1.12.0).

One JVM run over every schema: Java decodes our bytes with ``BinaryMessageDecoder`` and
re-encodes them with ``BinaryMessageEncoder``; we decode Java's bytes and compare with what we
wrote. Java also reports ``SchemaNormalization.parsingFingerprint64`` for each schema, which must
equal ours (the fingerprint is the whole of single-object interoperability).
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import subprocess
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from dfdg.localbroker.jars import compile_java, jars_dir
from dfdg.localbroker.manager import java_command, resolve_classpath
from schemas.catalogue import SCHEMA_DIR, fingerprint64
from schemas.codec import Codec
from schemas.registry import registered_classes

JAVA_SOURCE = Path(__file__).resolve().parents[1] / "java" / "AvroInterop.java"
PER_SCHEMA = 25
CODEC = Codec.default()
CLASSES = registered_classes()
TEXTS = ["", "a", "København Ø", "æøåÆØÅ", "🙂 emoji", "x" * 300, "line\nbreak", "0101901234"]


def _sample(tp: Any, rng: random.Random) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        member = next(a for a in typing.get_args(tp) if a is not type(None))
        return None if rng.random() < 0.3 else _sample(member, rng)
    if origin is tuple:
        return tuple(_sample(typing.get_args(tp)[0], rng) for _ in range(rng.randrange(4)))
    if origin in (Mapping, dict):
        return {rng.choice(TEXTS) + str(i): _sample(typing.get_args(tp)[1], rng) for i in range(rng.randrange(4))}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return rng.choice(list(tp))
    if tp is str:
        return rng.choice(TEXTS)
    if tp is bytes:
        return rng.randbytes(rng.randrange(40))
    if tp is bool:
        return rng.random() < 0.5
    if tp is int:
        return rng.choice([0, 1, -1, 17, 2**31 - 1, -(2**31), rng.randrange(-(2**31), 2**31)])
    if tp is float:
        return rng.choice([0.0, 1.0, 0.5, -2.25, 1e300, rng.random()])
    if tp is date:
        return date(1970, 1, 1) + timedelta(days=rng.randrange(-700_000, 2_900_000))
    if tp is datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(-(2**45), 2**47))
    raise TypeError(tp)


def _samples(cls: type, rng: random.Random) -> list[object]:
    hints = typing.get_type_hints(cls)
    return [cls(**{f.name: _sample(hints[f.name], rng) for f in dataclasses.fields(cls)}) for _ in range(PER_SCHEMA)]


def _frame(messages: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(m)) + m for m in messages)


def _unframe(data: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(data):
        (length,) = struct.unpack_from(">i", data, at)
        yield data[at + 4:at + 4 + length]
        at += 4 + length


def test_java_reads_our_bytes_and_we_read_javas_for_every_schema(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    written: dict[str, list[object]] = {}
    for full_name in sorted(CODEC.catalogue.current):
        written[full_name] = _samples(CLASSES[full_name], rng)
        (tmp_path / f"{full_name}.py.bin").write_bytes(_frame([CODEC.encode(r) for r in written[full_name]]))

    classpath = resolve_classpath()
    classes = compile_java(JAVA_SOURCE, classpath, jars_dir() / "classes")
    command = java_command(classpath + os.pathsep + str(classes), "AvroInterop", str(SCHEMA_DIR), str(tmp_path))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith(("FP ", "OK "))]
    java_fingerprints = {name: int(value) for kind, name, value in lines if kind == "FP"}
    ours = {name: fingerprint64(v) for name, v in CODEC.catalogue.current.items()}
    assert java_fingerprints == ours
    assert {name: int(n) for kind, name, n in lines if kind == "OK"} == {name: PER_SCHEMA for name in written}

    for full_name, originals in written.items():
        java_bytes = list(_unframe((tmp_path / f"{full_name}.java.bin").read_bytes()))
        assert [CODEC.decode(b) for b in java_bytes] == originals, full_name
        assert all(b[2:10] == CODEC.catalogue.current[full_name].fingerprint for b in java_bytes)


@pytest.mark.parametrize("value", [0, -1, 2**63 - 1, -(2**63)])
def test_fingerprint64_is_a_signed_little_endian_long(value: int) -> None:
    version = dataclasses.replace(next(iter(CODEC.catalogue.current.values())),
                                  fingerprint=value.to_bytes(8, "little", signed=True))
    assert fingerprint64(version) == value
