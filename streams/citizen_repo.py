"""The citizens table behind a small interface: load a citizen into a working copy, save it back
as one sealed row (``streams.citizen_rows``), list the clear headers for the deadline index.

The rows are any mapping of bytes to bytes with ``get``, ``items`` and item assignment. In the
worker they are the Faust table's local store (``streams.faust_app.TableRows``), written to the
partition of the event being handled (the step sets that context), and the changelog record of
each row goes out through the step's outbox (``Changelog``), so the step sends its rows as one
batch and waits for them, instead of Faust's one send per key.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from processors.deceased import ArchiveSaga
from processors.model import CitizenState, Deadline
from streams.citizen_rows import (
    RowError,
    RowHeader,
    decode_header,
    decode_row,
    encode_row,
    state_from_json,
    state_to_json,
    window_of,
)
from streams.logs import get_logger
from streams.outbox import Outbox
from streams.sealing import Sealer, UnknownKey

__all__ = ["POSITIONS_KEY", "Citizen", "CitizenRepository"]

log = get_logger("dfdg.citizens")

# Where the citizen step's input stands in a partition, kept among that partition's rows (no
# citizen key starts with a NUL byte): written with the batch's rows, so after a restore the
# rows and the place to read on from always belong together (``streams.citizen_loop``).
POSITIONS_KEY = b"\x00positions"


@dataclass(slots=True)
class Citizen:
    """The working copy of one citizen during a batch; written back once, after the effects."""

    key: str
    partition: int
    state: CitizenState
    saga: ArchiveSaga | None = None
    erased: bool = False
    # The row is there but its sealed part cannot be opened: the keys were shredded by a saga
    # that crashed before it wrote the erasure marker. Only that saga may still act.
    unreadable: bool = False
    # At least one message of the batch was handled (not dead-lettered): the row is written.
    handled: bool = False
    # The JSON of ``state`` when it was already encoded (the size check does it per event), kept
    # with the state it encodes: a later change of ``state`` can never be saved from stale bytes.
    encoded: tuple[CitizenState, bytes] | None = field(default=None, repr=False)
    # The pending deadlines in the row as loaded: what the deadline index last counted for this
    # citizen, so that it can keep its count of deadlines beyond its window exact.
    pending_before: tuple[Deadline, ...] = ()
    # The notify keys published for this citizen (``RowHeader.published``); the step adds those
    # it publishes, and they are written with the row, after the key rows are acknowledged.
    published: set[str] = field(default_factory=set)

    def snapshot(self) -> Citizen:
        return Citizen(self.key, self.partition, self.state, self.saga, self.erased, self.unreadable,
                       self.handled, self.encoded, self.pending_before, set(self.published))


# (key, partition, pending deadlines in the window, how many others, the header if it has a
# saga or the erasure marker): streams.citizen_rows.window_of.
WindowRow = tuple[bytes, int, tuple[Deadline, ...], int, RowHeader | None]


class Rows(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def __setitem__(self, key: bytes, row: bytes) -> None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]: ...

    def keys(self) -> Iterable[bytes]: ...


@runtime_checkable
class PartitionedRows(Rows, Protocol):
    """Rows that can be read one partition at a time (the worker's RocksDB store): a rebuild of
    some partitions then reads only theirs. Any other ``Rows`` is read whole, and its rows are
    kept by the partition each row names."""

    def items_in(self, partitions: Collection[int]) -> Iterable[tuple[bytes, bytes]]: ...


class Changelog(Protocol):
    """Where a row goes to be durable; ``send`` is collected by the current outbox."""

    topic: str

    async def send(self, partition: int, key: bytes, row: bytes) -> None: ...

    def persisted(self, offsets: dict[int, int]) -> None:
        """The rows up to these changelog offsets are acknowledged (recovery may start after them)."""


class CitizenRepository:
    def __init__(self, table: Rows, sealer: Sealer, changelog: Changelog | None = None) -> None:
        self._table = table
        self._sealer = sealer
        self._changelog = changelog

    async def load(self, key: str, partition: int) -> Citizen:
        row = self._table.get(key.encode())
        if row is None:
            return Citizen(key, partition, CitizenState(citizen_key=key))
        header, sealed = decode_row(row)
        if header.erased:
            return Citizen(key, partition, CitizenState(citizen_key=key), header.saga, erased=True,
                           pending_before=header.pending)
        try:
            data = await self._sealer.open_state(key, sealed)
        except UnknownKey:
            return Citizen(key, partition, CitizenState(citizen_key=key), header.saga, unreadable=True,
                           pending_before=header.pending)
        state = state_from_json(data, header.pending)
        return Citizen(key, partition, state, header.saga, encoded=(state, data), pending_before=header.pending,
                       published=set(header.published))

    async def save(self, citizen: Citizen) -> None:
        if citizen.erased:
            row = encode_row(RowHeader(citizen.partition, (), citizen.saga, erased=True), b"")
        else:
            cached = citizen.encoded
            data = cached[1] if cached is not None and cached[0] is citizen.state else state_to_json(citizen.state)
            sealed = await self._sealer.seal_state(citizen.key, data)
            header = RowHeader(citizen.partition, tuple(citizen.state.pending.values()), citizen.saga,
                               published=tuple(sorted(citizen.published)))
            row = encode_row(header, sealed)
        key = citizen.key.encode()
        self._table[key] = row
        if self._changelog is not None:
            await self._changelog.send(citizen.partition, key, row)

    def positions(self) -> dict[str, int]:
        """The next offset to read per input topic, in the current partition ({} before the first batch)."""
        row = self._table.get(POSITIONS_KEY)
        if row is None:
            return {}
        try:
            return {str(topic): int(offset) for topic, offset in json.loads(row).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            log.error("input positions unreadable; reading on from the group's offsets", error=type(exc).__name__)
            return {}

    async def send_positions(self, partition: int, positions: Mapping[str, int]) -> bytes:
        """The positions row to the changelog (collected by the current outbox); the caller keeps
        it locally (``keep_positions``) once the outbox is acknowledged, never before: a local
        row claiming a batch whose rows never reached the changelog would stop its replay."""
        row = json.dumps(dict(sorted(positions.items())), separators=(",", ":")).encode()
        if self._changelog is not None:
            await self._changelog.send(partition, POSITIONS_KEY, row)
        return row

    def keep_positions(self, row: bytes) -> None:
        self._table[POSITIONS_KEY] = row

    def persisted(self, box: Outbox) -> None:
        """Tell the changelog that the rows sent through ``box`` are acknowledged."""
        if self._changelog is not None:
            self._changelog.persisted(box.last_offsets(self._changelog.topic))

    def citizen_keys(self) -> list[bytes]:
        """Every citizen row's key as of now, in one list: a scan that works through it with
        pauses is not disturbed by rows the step writes meanwhile (a live iteration would be)."""
        return [key for key in self._table.keys() if not key.startswith(b"\x00")]  # noqa: SIM118 - Rows, not a dict

    def header(self, key: bytes) -> RowHeader | None:
        """The row's clear header, or None when it is gone or broken (logged)."""
        row = self._table.get(key)
        if row is None:
            return None
        try:
            return decode_header(row)
        except RowError as exc:
            log.error("citizen row unreadable", citizen=key.decode()[:12], error=str(exc))
            return None

    def headers(self) -> Iterator[tuple[str, RowHeader]]:
        """Every row's clear header, for the saga gauge and tools; a broken row is logged."""
        for key, row in self._table.items():
            if key.startswith(b"\x00"):
                continue  # not a citizen (POSITIONS_KEY)
            try:
                yield key.decode(), decode_header(row)
            except RowError as exc:
                log.error("citizen row unreadable", citizen=key.decode()[:12], error=str(exc))

    def window_rows(self, due_by: str, partitions: Collection[int]) -> Iterator[WindowRow]:
        """For a deadline index rebuild: each row of ``partitions`` as ``citizen_rows.window_of``
        reads it (the whole header only where a saga or the erasure marker is), with its key;
        a broken row is logged."""
        table = self._table
        for key, row in table.items_in(partitions) if isinstance(table, PartitionedRows) else table.items():
            if key[:1] == b"\x00":
                continue  # not a citizen (POSITIONS_KEY)
            try:
                partition, held, left_out, header = window_of(row, due_by)
            except RowError as exc:
                log.error("citizen row unreadable", citizen=key.decode()[:12], error=str(exc))
                continue
            # A store that cannot read one partition alone gives them all: the row says whose.
            if partition in partitions:
                yield key, partition, held, left_out, header
