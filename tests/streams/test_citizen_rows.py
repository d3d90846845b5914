"""streams.citizen_rows: one row per citizen in the ``citizens`` table, a clear header (pending
deadlines, archive saga, erasure marker, partition) beside the sealed state."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import date, timedelta

import orjson
import pytest

from processors.deceased import ArchiveSaga, start_saga
from processors.events import CitizenDeceased, JobseekerRegistered
from processors.model import CitizenState, Deadline, PersonalData
from processors.pipeline import process
from streams.citizen_repo import Citizen, CitizenRepository
from streams.citizen_rows import (
    ROW_MAGIC,
    RowError,
    RowHeader,
    decode_header,
    decode_row,
    encode_row,
    saga_from_dict,
    saga_to_dict,
    split_row,
    state_from_json,
    state_to_json,
    window_of,
)
from tests.processors.lifecycle_driver import case_created, new_id, utc

CPR = "0101901234"  # synthetic
NAME = "Synthetic Rowena Person"
KEY = "ck-rows-1"
NOW = utc(2026, 3, 1, 9)

PENDING = (Deadline("R3.1", date(2026, 3, 28), "case-1"), Deadline("R2.1:CV", date(2026, 3, 14), "case-1"),
           Deadline("R8.1", date(2031, 1, 1)))
SAGA = ArchiveSaga(citizen_key=KEY, package_id="pkg-1", date_of_death=date(2026, 2, 27), step="delivered",
                   areas_to_archive=("case/case-1/CV", "identity"), areas_deleted_at_once=("registration",),
                   deliveries=1)


def test_a_row_round_trips_its_header_and_its_sealed_bytes_exactly() -> None:
    header = RowHeader(3, PENDING, SAGA)
    # Sealed bytes that look like a header or a marker must come back untouched.
    sealed = b"\xd5\x01" + bytes(range(256)) + ROW_MAGIC + b'{"p":9,"d":[]}'
    row = encode_row(header, sealed)
    assert row.startswith(ROW_MAGIC) and ROW_MAGIC == b"R3"
    # big-endian header length, then the summary: partition, deadlines listed, earliest due, flags
    length, partition, listed, earliest, flags = struct.unpack(">IHI10sB", row[2:23])
    assert (partition, listed, flags) == (3, len(PENDING), 1)  # a saga
    assert earliest == min(d.due_date for d in PENDING).isoformat().encode()
    assert orjson.loads(row[23:23 + length])["p"] == 3
    assert decode_row(row) == (header, sealed)
    assert decode_header(row) == header
    assert split_row(row) == (row[23:23 + length], sealed)


def _as_r2(row: bytes) -> bytes:
    """The same row as a worker wrote it before the summary: ``R2`` | length | JSON | sealed."""
    return b"R2" + row[2:6] + row[23:]


def test_a_row_written_before_the_summary_still_reads_the_same() -> None:
    for header in (RowHeader(3, PENDING, SAGA), RowHeader(0), RowHeader(2, PENDING, published=("ab" * 16,)),
                   RowHeader(1, (), replace(SAGA, step="deleted"), erased=True)):
        row = encode_row(header, b"\xd5\x01sealed")
        assert decode_row(_as_r2(row)) == decode_row(row) == (header, b"\xd5\x01sealed")


@pytest.mark.parametrize("header", [
    pytest.param(RowHeader(3, PENDING), id="deadlines"),
    pytest.param(RowHeader(2), id="none"),
    pytest.param(RowHeader(1, PENDING, SAGA), id="saga"),
    pytest.param(RowHeader(1, (), replace(SAGA, step="deleted"), erased=True), id="erased"),
])
def test_the_summary_gives_the_window_the_json_gives_for_every_day(header: RowHeader) -> None:
    """``window_of`` passes over a row by its summary only where its JSON says the same: for each
    day from before the first deadline to after the last, R3 and R2 give the same answer."""
    row = encode_row(header, b"")
    days = sorted({d.due_date for d in PENDING})
    for day in [days[0] - timedelta(days=1), *days, *(d + timedelta(days=1) for d in days)]:
        due_by = day.isoformat()
        assert window_of(row, due_by) == window_of(_as_r2(row), due_by)
        partition, held, left_out, whole = window_of(row, due_by)
        assert partition == header.partition and len(held) + left_out == len(header.pending)
        assert set(held) == {d for d in header.pending if d.due_date <= day}
        assert (whole is not None) == (header.saga is not None or header.erased)


def test_a_row_without_deadlines_or_saga_round_trips() -> None:
    header = RowHeader(0)
    row = encode_row(header, b"\xd5\x01x")
    assert decode_row(row) == (header, b"\xd5\x01x")
    assert not decode_header(row).erased and decode_header(row).saga is None


def test_the_erasure_marker_round_trips_with_no_sealed_part() -> None:
    deleted = replace(SAGA, step="deleted")
    row = encode_row(RowHeader(1, (), deleted, erased=True), b"")
    header, sealed = decode_row(row)
    assert header.erased and sealed == b""
    assert header == RowHeader(1, (), deleted, erased=True)
    assert not decode_header(encode_row(RowHeader(1, (), deleted), b"")).erased  # only the marker says erased


@pytest.mark.parametrize("step", ["pending", "delivered", "receipted", "deleted", "rejected"])
def test_a_saga_round_trips_at_every_step(step: str) -> None:
    saga = replace(SAGA, step=step, receipt_sha256="ab" * 32 if step in ("receipted", "deleted") else None,
                   rejection_reason="checksum mismatch" if step == "rejected" else None)
    body = saga_to_dict(saga)
    assert saga_from_dict(orjson.loads(orjson.dumps(body))) == saga  # through JSON, as in the header
    assert decode_header(encode_row(RowHeader(0, (), saga), b"")).saga == saga


def test_a_saga_with_no_areas_round_trips() -> None:
    saga = ArchiveSaga(citizen_key=KEY, package_id="pkg-2", date_of_death=date(2026, 1, 2))
    assert saga_from_dict(orjson.loads(orjson.dumps(saga_to_dict(saga)))) == saga


def _with_header(raw: bytes, sealed: bytes = b"") -> bytes:
    """A row as written before the summary (``R2``): its JSON is all there is to read."""
    return b"R2" + struct.pack(">I", len(raw)) + raw + sealed


@pytest.mark.parametrize("row", [
    pytest.param(b"", id="empty"),
    pytest.param(b"R2\x00", id="shorter-than-the-length"),
    pytest.param(b"R1" + encode_row(RowHeader(0), b"")[2:], id="wrong-marker"),
    pytest.param(b"\xd5\x01" + bytes(40), id="a-bare-sealed-state"),
    pytest.param(b'{"p":0,"d":[]}', id="a-bare-json-header"),
    pytest.param(b"R2" + struct.pack(">I", 100) + b'{"p":0,"d":[]}', id="length-past-the-row"),
    pytest.param(encode_row(RowHeader(0), b"")[:22], id="r3-shorter-than-its-summary"),
    pytest.param(ROW_MAGIC + struct.pack(">IHI10sB", 100, 0, 0, b"-" * 10, 0) + b'{"p":0,"d":[]}',
                 id="r3-length-past-the-row"),
    pytest.param(_with_header(b'{"p":0,"d":['), id="header-not-json"),
    pytest.param(_with_header(b'{"d":[]}'), id="no-partition"),
    pytest.param(_with_header(b'{"p":0}'), id="no-deadlines"),
    pytest.param(_with_header(b'{"p":"x","d":[]}'), id="partition-not-a-number"),
    pytest.param(_with_header(b'{"p":0,"d":[["R3.1","2026-13-01","case-1"]]}'), id="bad-due-date"),
    pytest.param(_with_header(b'{"p":0,"d":[["R3.1","2026-03-01"]]}'), id="short-deadline"),
    pytest.param(_with_header(b'{"p":0,"d":[],"g":{"citizen_key":"k"}}'), id="saga-missing-fields"),
    pytest.param(_with_header(b'[1,2]'), id="header-not-an-object"),
])
def test_a_broken_row_raises_row_error(row: bytes) -> None:
    with pytest.raises(RowError):
        decode_row(row)
    with pytest.raises(RowError):
        decode_header(row)


def _state_with_personal_data() -> tuple[CitizenState, ArchiveSaga]:
    state = CitizenState(citizen_key=KEY, personal=PersonalData(cpr=CPR))
    state = process(state, case_created(cpr=CPR), NOW).state
    state = process(state, JobseekerRegistered(
        event_id=new_id(), occurred_at=NOW, producer="t", cpr=CPR, name=NAME, registration_date=date(2026, 2, 1),
        municipality="101", benefit_category="DP", unemployment_degree=1.0, akasse="24"), NOW).state
    assert state.personal.cpr == CPR and state.personal.name == NAME and state.pending
    death = CitizenDeceased(event_id=new_id(), occurred_at=NOW, producer="t", cpr=CPR, date_of_death=date(2026, 3, 1))
    saga, _ = start_saga(state, death, NOW)
    return state, saga


def _personal(cpr: str, name: str) -> list[bytes]:
    return [cpr.encode(), f"{cpr[:6]}-{cpr[6:]}".encode(), name.encode()]


def test_the_header_never_holds_the_cpr_or_the_name() -> None:
    state, saga = _state_with_personal_data()
    assert CPR.encode() in state_to_json(state)  # the state itself does hold it: the check below is not vacuous
    row = encode_row(RowHeader(1, tuple(state.pending.values()), saga), b"")
    header_json, sealed = split_row(row)
    assert sealed == b""
    for needle in _personal(CPR, NAME):
        assert needle not in header_json and needle not in row
    header = decode_header(row)
    assert set(header.pending) == set(state.pending.values()) and header.saga == saga


class _FakeSealer:
    """Seals nothing: returns an empty body, and keeps what it was asked to seal."""

    def __init__(self) -> None:
        self.sealed: list[tuple[str, bytes]] = []

    async def seal_state(self, citizen: str, data: bytes) -> bytes:
        self.sealed.append((citizen, data))
        return b""


async def test_the_repository_writes_no_cpr_outside_the_sealed_part() -> None:
    # The row the worker really writes (CitizenRepository.save), with a sealer whose body is empty:
    # whatever remains in the row is the clear header, and it must hold nothing personal.
    state, saga = _state_with_personal_data()
    table: dict[bytes, bytes] = {}
    sealer = _FakeSealer()
    citizen = Citizen(KEY, 2, state, saga, handled=True)
    await CitizenRepository(table, sealer).save(citizen)  # type: ignore[arg-type]
    [(sealed_for, data)] = sealer.sealed
    assert sealed_for == KEY and state_from_json(data) == state  # the personal data went to the sealer
    row = table[KEY.encode()]
    for needle in _personal(CPR, NAME):
        assert needle not in row
    header, sealed = decode_row(row)
    assert sealed == b"" and header.partition == 2 and not header.erased
    assert set(header.pending) == set(state.pending.values()) and header.saga == saga

    citizen.erased = True  # the erasure marker: nothing sealed, nothing personal
    await CitizenRepository(table, sealer).save(citizen)  # type: ignore[arg-type]
    assert len(sealer.sealed) == 1, "the erasure marker sealed a state"
    marker = table[KEY.encode()]
    header, sealed = decode_row(marker)
    assert header.erased and sealed == b"" and header.pending == ()
    for needle in _personal(CPR, NAME):
        assert needle not in marker


async def test_the_repository_never_saves_an_encoding_of_an_older_state() -> None:
    # The step caches a state's JSON from its size check; a later change (a saga deleting areas)
    # must be what is saved, not the cached bytes of the state before it.
    state, saga = _state_with_personal_data()
    older = CitizenState(citizen_key=KEY)
    table: dict[bytes, bytes] = {}
    sealer = _FakeSealer()
    citizen = Citizen(KEY, 2, state, saga, encoded=(older, state_to_json(older)))
    await CitizenRepository(table, sealer).save(citizen)  # type: ignore[arg-type]
    [(_, data)] = sealer.sealed
    assert state_from_json(data) == state
    citizen.encoded = (state, b'{"cached": true}')
    await CitizenRepository(table, sealer).save(citizen)  # type: ignore[arg-type]
    assert sealer.sealed[-1][1] == b'{"cached": true}', "an encoding of the current state is reused"


def test_state_json_round_trips() -> None:
    state, _ = _state_with_personal_data()
    assert state_from_json(state_to_json(state)) == state
