"""The local broker's cluster id is one ``kafka-storage format -t`` accepts, as Kafka's own
``Uuid.randomUuid()`` makes it: 16 bytes (a version-4 UUID) in URL-safe base64 without padding,
22 characters, never starting with '-' (the storage tool would read it as an option). Pure: no broker."""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable, Iterator

from dfdg.localbroker.manager import _cluster_id

URL_SAFE_22 = re.compile(r"[A-Za-z0-9_-]{22}")
# 16 bytes whose URL-safe base64 starts with '-': '-' is 62 in the alphabet, so the first 6 bits are 111110.
DASH_FIRST = bytes([0b11111000]) + bytes(15)


def _decode(cluster_id: str) -> bytes:
    return base64.urlsafe_b64decode(cluster_id + "==")


def _source(*chunks: bytes) -> tuple[Callable[[int], bytes], list[int]]:
    """An ``os.urandom``-like function that hands out ``chunks`` in order, and the sizes it was asked for."""
    it: Iterator[bytes] = iter(chunks)
    asked: list[int] = []

    def random_bytes(n: int) -> bytes:
        asked.append(n)
        chunk = next(it)
        assert len(chunk) == n
        return chunk

    return random_bytes, asked


def test_many_cluster_ids_are_all_valid() -> None:
    ids = [_cluster_id() for _ in range(20_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(URL_SAFE_22.fullmatch(i) for i in ids)
    raw = [_decode(i) for i in ids]
    assert all(len(r) == 16 for r in raw)
    assert all(uuid.UUID(bytes=r).version == 4 for r in raw)  # like java.util.UUID.randomUUID()
    assert len(set(ids)) == len(ids)


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    assert base64.urlsafe_b64encode(DASH_FIRST).startswith(b"-")  # the bad draw really is bad
    good = bytes(range(1, 17))
    random_bytes, asked = _source(DASH_FIRST, DASH_FIRST, good)
    cluster_id = _cluster_id(random_bytes)
    assert asked == [16, 16, 16]  # two rejected draws, then the good one
    assert not cluster_id.startswith("-") and URL_SAFE_22.fullmatch(cluster_id)
    assert _decode(cluster_id) == uuid.UUID(bytes=good, version=4).bytes


def test_a_good_first_draw_is_kept() -> None:
    good = os.urandom(16)
    while base64.urlsafe_b64encode(good).startswith(b"-"):
        good = os.urandom(16)
    random_bytes, asked = _source(good)
    assert _decode(_cluster_id(random_bytes)) == uuid.UUID(bytes=good, version=4).bytes
    assert asked == [16]
