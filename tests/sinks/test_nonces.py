"""Nonces from a pool (``sinks.nonces``): a GCM nonce must never repeat under one key, so every
byte is handed out once, across threads, across the pool's refills and across a ``fork``."""

from __future__ import annotations

import os
import threading

import pytest

from sinks import nonces
from sinks.crypto import DataKey, open_sealed, seal
from sinks.nonces import POOL_BYTES, random_bytes


def test_no_nonce_repeats_across_refills_and_threads() -> None:
    taken: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [random_bytes(12) for _ in range(3 * POOL_BYTES // 12)]
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 4 * (3 * POOL_BYTES // 12) and len(set(taken)) == len(taken)
    assert {len(n) for n in taken} == {12}


def test_a_request_larger_than_the_pool_comes_from_the_kernel_whole() -> None:
    assert len(random_bytes(POOL_BYTES + 1)) == POOL_BYTES + 1


def test_a_forked_child_never_hands_out_what_the_parent_will() -> None:
    random_bytes(12)  # the pool holds bytes the parent has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next nonces, to the parent
        os.close(read)
        os.write(write, b"".join(random_bytes(12) for _ in range(20)))
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 4096):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = b"".join(random_bytes(12) for _ in range(20))
    child_nonces = {child[i:i + 12] for i in range(0, len(child), 12)}
    parent_nonces = {parent[i:i + 12] for i in range(0, len(parent), 12)}
    assert len(child_nonces) == 20 and not child_nonces & parent_nonces


def test_sealed_values_still_open_and_their_nonces_differ() -> None:
    key = DataKey.generate()
    sealed = [seal(key, b"personal", b"aad") for _ in range(100)]
    assert {open_sealed(key, s, b"aad") for s in sealed} == {b"personal"}
    assert len({s[18:30] for s in sealed}) == 100


def test_the_pool_is_refilled_from_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    nonces._pool.forget()
    monkeypatch.setattr(nonces.os, "urandom", counting)
    for _ in range(POOL_BYTES // 12 + 1):
        random_bytes(12)
    assert calls == [POOL_BYTES, POOL_BYTES]  # one read a page, not one a nonce
