"""Where a key topic's rows are kept between uses: wrapped, and opened only when needed.

A key topic holds every citizen's data keys. Holding them all opened in memory cost ~230 bytes
a citizen, ~1.4 GiB for the country's six million (issue 15). Here the rows stay as the topic
has them, wrapped by the master key, either in a dict (the operators' tools, a subscriber) or
in a local RocksDB (the worker, ``RocksWrappedKeys``), and ``OpenedKeys`` keeps a bounded
number of citizens' keys opened, the most recently used.

The RocksDB is a copy of the topic and nothing else: every start makes a new one and reads the
topic into it, so it never has to agree with anything but the topic, and a key shredded while
the worker was down is never found in it; the copies of processes that have ended are removed
then. Deleting a row leaves its bytes in
RocksDB's files until compaction, as a tombstoned row stays in the topic's log until the
topic's own compaction: in both places the key is wrapped by the master key
(docs/security.md).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Protocol

__all__ = ["InMemoryWrappedKeys", "OpenedKeys", "RocksWrappedKeys", "WrappedKeys", "decode_entries",
           "encode_entries"]

_ID = 16
_LENGTH = 2

Entry = tuple[bytes, bytes]  # a key's 16-byte id, and the key wrapped as its row holds it


def encode_entries(entries: Iterable[Entry]) -> bytes:
    """A citizen's wrapped keys as one value: per key its id, the wrapped key's length, the key."""
    out = bytearray()
    for key_id, wrapped in entries:
        if len(key_id) != _ID:
            raise ValueError("a data key's id is 16 bytes")
        out += key_id + len(wrapped).to_bytes(_LENGTH, "big") + wrapped
    return bytes(out)


def decode_entries(value: bytes) -> list[Entry]:
    entries, i = [], 0
    while i < len(value):
        length = int.from_bytes(value[i + _ID:i + _ID + _LENGTH], "big")
        start = i + _ID + _LENGTH
        entries.append((value[i:i + _ID], value[start:start + length]))
        i = start + length
    return entries


class WrappedKeys(Protocol):
    """A key topic's rows as they stand: per citizen its wrapped keys, and the erased citizens."""

    def get(self, citizen: str) -> bytes:
        """The citizen's wrapped keys (``encode_entries``), or ``b""``."""

    def write(self, changes: Mapping[str, bytes]) -> None:
        """Replace each citizen's wrapped keys; ``b""`` removes them."""

    def mark_erased(self, citizens: Iterable[str]) -> None: ...

    def is_erased(self, citizen: str) -> bool: ...

    def __len__(self) -> int:
        """How many citizens have keys."""

    def close(self) -> None: ...


class InMemoryWrappedKeys:
    """The rows in a dict: for the tools and subscribers, which read a topic for minutes."""

    def __init__(self) -> None:
        self._rows: dict[str, bytes] = {}
        self._erased: set[str] = set()

    def get(self, citizen: str) -> bytes:
        return self._rows.get(citizen, b"")

    def write(self, changes: Mapping[str, bytes]) -> None:
        for citizen, value in changes.items():
            if value:
                self._rows[citizen] = value
            else:
                self._rows.pop(citizen, None)

    def mark_erased(self, citizens: Iterable[str]) -> None:
        self._erased.update(citizens)

    def is_erased(self, citizen: str) -> bool:
        return citizen in self._erased

    def __len__(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        self._rows.clear()


_KEYS, _ERASED = b"k:", b"e:"
_LOCK = ".lock"


class RocksWrappedKeys:
    """The rows in a RocksDB of this process's own: a copy of the topic, rebuilt from it at
    every start, so it needs no log of its own (no WAL).

    ``folder`` holds one copy per process, each in a directory of its own with a lock file the
    process holds while it lives. Opening a copy removes the copies whose lock nobody holds
    (processes that ended, however), never one in use: a process starting while another still
    stops on the same data directory leaves that one's copy alone."""

    def __init__(self, folder: Path, write_buffer_bytes: int, block_cache_bytes: int) -> None:
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteOptions

        folder.mkdir(parents=True, exist_ok=True)
        _remove_unlocked(folder)
        self._path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=folder))
        self._lock = _hold(self._path / _LOCK)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(write_buffer_bytes)
        options.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(block_cache_bytes))
        table.set_bloom_filter(10, False)  # most lookups are for new citizens: a miss, from memory
        options.set_block_based_table_factory(table)
        self._db = Rdict(str(self._path / "db"), options)
        unlogged = WriteOptions()
        unlogged.disable_wal = True
        self._db.set_write_options(unlogged)
        self._count = 0
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    def get(self, citizen: str) -> bytes:
        value: bytes | None = self._db.get(_KEYS + citizen.encode())
        return value or b""

    def write(self, changes: Mapping[str, bytes]) -> None:
        from rocksdict import WriteBatch

        rows = [_KEYS + c.encode() for c in changes]
        before = self._db.get(rows)
        batch = WriteBatch(raw_mode=True)
        counted = 0
        for row, old, value in zip(rows, before, changes.values(), strict=True):
            if value:
                batch.put(row, value)
                counted += old is None
            else:
                batch.delete(row)
                counted -= old is not None
        self._db.write(batch)
        self._count += counted

    def mark_erased(self, citizens: Iterable[str]) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for citizen in citizens:
            batch.put(_ERASED + citizen.encode(), b"")
        self._db.write(batch)

    def is_erased(self, citizen: str) -> bool:
        return self._db.get(_ERASED + citizen.encode()) is not None

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._db.close()
        shutil.rmtree(self._path)
        self._lock.close()


def _hold(lock_path: Path) -> IO[bytes]:
    """The lock file, opened and locked for as long as it stays open (the process's life)."""
    handle = lock_path.open("wb")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _remove_unlocked(folder: Path) -> None:
    """Remove the copies in ``folder`` that no live process holds."""
    for copy in folder.iterdir():
        if not copy.is_dir():
            copy.unlink()  # not a copy: nothing of this module's is kept beside them
            continue
        try:
            with (copy / _LOCK).open("ab") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(copy)
        except BlockingIOError:
            continue  # in use by a process that still runs


class OpenedKeys:
    """The opened keys of the ``bound`` citizens used most recently (packed, as ``KeyTopic``
    keeps them): a burst of due deadlines or a drain of new citizens opens each key once."""

    def __init__(self, bound: int) -> None:
        if bound < 1:
            raise ValueError("at least one citizen's keys are kept opened")
        self._bound = bound
        self._opened: OrderedDict[str, bytes] = OrderedDict()

    def get(self, citizen: str) -> bytes | None:
        packed = self._opened.get(citizen)
        if packed is not None:
            self._opened.move_to_end(citizen)
        return packed

    def put(self, citizen: str, packed: bytes) -> None:
        self._opened[citizen] = packed
        self._opened.move_to_end(citizen)
        if len(self._opened) > self._bound:
            self._opened.popitem(last=False)

    def drop(self, citizen: str) -> None:
        self._opened.pop(citizen, None)

    def __len__(self) -> int:
        return len(self._opened)
