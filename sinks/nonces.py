"""Random bytes that need not be secret (AES-GCM nonces, key ids), taken from the kernel a page at a time.

A new citizen costs the worker about eight of them (the door's two seals and a key id, the
master key's wrap, the state's, the notification's and its subscriber key's seals). Each
``os.urandom`` is a ``getrandom(2)`` system call; in the draining worker, on this project's VM,
py-spy put ~12% of the worker's samples on those calls, though one costs ~0.5 µs alone. The
bytes are the kernel's CSPRNG output either way, handed out once each; only secrets (a data
key's 32 bytes) are still read from the kernel when they are made, so no future secret waits in
memory.

A GCM nonce must never repeat under one key: each byte is handed out once, under a lock (tools
seal from more than one thread), and a child process starts with an empty pool after ``fork``,
so a parent and its child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

__all__ = ["POOL_BYTES", "random_bytes"]

POOL_BYTES = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if n > POOL_BYTES:
            return os.urandom(n)
        with self._lock:
            if self._at + n > len(self._bytes):
                self._bytes, self._at = os.urandom(POOL_BYTES), 0
            start = self._at
            self._at = start + n
            return self._bytes[start:self._at]

    def forget(self) -> None:
        """In a forked child: nothing the parent held is handed out (the lock may have been held)."""
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the kernel's CSPRNG, never handed out before in this process."""
    return _pool.take(n)
