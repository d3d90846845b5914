"""One row per citizen in the ``citizens`` table: the sealed state, and in clear beside it only
what the worker needs without opening it.

    ``R3`` | header length (4 bytes, big-endian) | summary (17 bytes) | header (JSON) | sealed state

The summary repeats, at fixed places, what a deadline index rebuild reads of a million rows
after a failover: the partition (2 bytes), how many deadlines the header lists (4), the earliest
due date (10, ISO; dashes when none) and whether a saga or the erasure marker is there (1). A
row whose deadlines all fall beyond the index's window is passed over without parsing its JSON.
Rows written before it (``R2``: no summary) are read as ever.

The header holds the citizen's pending deadlines (rule, due date, case id), the archive saga
(package id, area names, step), the erasure marker and the ids of the notify keys already
published for the citizen's recipients: no personal data, so the deadline
index is rebuilt from the headers without a single decryption, and a saga whose citizen's
keys are already shredded can still be finished. Everything personal is in the sealed part,
which becomes unreadable when the citizen's keys are shredded.

One row holds what used to be three tables (state, deadlines, sagas): one changelog record per
citizen per batch, and no crash can leave a state without its deadlines or its saga.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import orjson

from processors.deceased import ArchiveSaga
from processors.model import CitizenState, Deadline
from processors.state_codec import state_from_dict, state_to_dict

__all__ = [
    "ROW_MAGIC",
    "RowError",
    "RowHeader",
    "decode_header",
    "decode_row",
    "encode_row",
    "saga_from_dict",
    "saga_to_dict",
    "split_row",
    "state_from_json",
    "state_to_json",
    "window_of",
]

ROW_MAGIC = b"R3"
_R2 = b"R2"
_LEN = struct.Struct(">I")
_PREFIX_R2 = len(_R2) + _LEN.size
# header length, partition, deadlines listed, earliest due date (ISO), flags
_FIXED = struct.Struct(">IHI10sB")
_PREFIX = len(ROW_MAGIC) + _FIXED.size
_NO_DATE = b"-" * 10
_SAGA, _ERASED = 1, 2


class RowError(ValueError):
    """A stored row does not decode (wrong marker or a broken header)."""


@dataclass(frozen=True, slots=True)
class RowHeader:
    partition: int
    pending: tuple[Deadline, ...] = ()
    saga: ArchiveSaga | None = None
    # Deleted after death (R7.3): nothing personal is left, but the citizen stays deceased.
    erased: bool = False
    # The ids (hex) of the notify keys already published for this citizen's recipients, so a
    # restarted worker does not publish them again (the ids are on the subscribers' key topics
    # and in every sealed personal part already; they say nothing without the keys).
    published: tuple[str, ...] = ()


def saga_to_dict(saga: ArchiveSaga) -> dict[str, object]:
    body = asdict(saga)
    body["date_of_death"] = saga.date_of_death.isoformat()
    return body


def saga_from_dict(body: dict[str, object]) -> ArchiveSaga:
    fields = dict(body)
    fields["date_of_death"] = date.fromisoformat(str(fields["date_of_death"]))
    fields["areas_to_archive"] = tuple(fields.get("areas_to_archive") or ())  # type: ignore[call-overload]
    fields["areas_deleted_at_once"] = tuple(fields.get("areas_deleted_at_once") or ())  # type: ignore[call-overload]
    fields["refused_sha256"] = tuple(fields.get("refused_sha256") or ())  # type: ignore[call-overload]
    for name in ("started_at", "retry_at"):  # orjson wrote them as RFC 3339; rows before R7.2 lack them
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(str(fields[name]))
    return ArchiveSaga(**fields)  # type: ignore[arg-type]


def state_to_json(state: CitizenState) -> bytes:
    return orjson.dumps(state_to_dict(state))


def state_from_json(data: bytes, pending: tuple[Deadline, ...] = ()) -> CitizenState:
    """``pending``: the row header's deadlines, reused for the state's (the same ones)."""
    return state_from_dict(orjson.loads(data), {d.deadline_id: d for d in pending} if pending else None)


def encode_row(header: RowHeader, sealed_state: bytes) -> bytes:
    listed = [[d.rule, d.due_iso, d.case_id] for d in header.pending]
    body: dict[str, object] = {
        "p": header.partition,
        "d": listed,
    }
    if header.saga is not None:
        body["g"] = saga_to_dict(header.saga)
    if header.erased:
        body["x"] = 1
    if header.published:
        body["n"] = list(header.published)
    encoded = orjson.dumps(body)
    earliest = min(due for _, due, _ in listed).encode() if listed else _NO_DATE
    flags = (_SAGA if header.saga is not None else 0) | (_ERASED if header.erased else 0)
    summary = _FIXED.pack(len(encoded), header.partition, len(listed), earliest, flags)
    return ROW_MAGIC + summary + encoded + sealed_state


def split_row(row: bytes) -> tuple[bytes, bytes]:
    """(header JSON, sealed state) of a row."""
    marker = row[:2]
    if marker == ROW_MAGIC and len(row) >= _PREFIX:
        start = _PREFIX
    elif marker == _R2 and len(row) >= _PREFIX_R2:
        start = _PREFIX_R2
    else:
        raise RowError("not a citizen row (no R3 or R2 marker)")
    (length,) = _LEN.unpack_from(row, 2)
    end = start + length
    if end > len(row):
        raise RowError("citizen row header runs past the row")
    return row[start:end], row[end:]


def decode_header(row: bytes) -> RowHeader:
    return decode_row(row)[0]


def decode_row(row: bytes) -> tuple[RowHeader, bytes]:
    """(clear header, sealed state) of a row."""
    raw, sealed = split_row(row)
    return _header(raw), sealed


def window_of(row: bytes, due_by: str) -> tuple[int, tuple[Deadline, ...], int, RowHeader | None]:
    """What a deadline index rebuild needs of a row (it reads a million after a failover):
    (partition, the pending deadlines due on or before ``due_by`` (an ISO date), how many others
    the row holds, and the whole header only for a row with a saga or the erasure marker, for
    what else is rebuilt from those; None for the others). The index holds a window of days: a
    rebuild that made every row's nine Deadlines spent most of its time making ten million only
    to count them. The dates are compared as the ISO strings the row holds; a row's summary
    says, without its JSON, when nothing of it is due by then."""
    if row[:2] == ROW_MAGIC and len(row) >= _PREFIX:
        _, partition, listed_count, earliest, flags = _FIXED.unpack_from(row, 2)
        if not flags and (listed_count == 0 or earliest > due_by.encode()):
            return partition, (), listed_count, None
    try:
        body = orjson.loads(split_row(row)[0])
        if "g" in body or "x" in body:
            header, left_out = _from_body(body, due_by)
            return header.partition, header.pending, left_out, header
        listed = body["d"]
        held = _deadlines(listed, due_by)
        return int(body["p"]), held, len(listed) - len(held), None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RowError(f"citizen row header does not decode ({type(exc).__name__})") from None


def _header(raw: bytes) -> RowHeader:
    try:
        return _from_body(orjson.loads(raw), None)[0]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RowError(f"citizen row header does not decode ({type(exc).__name__})") from None


def _from_body(body: dict[str, Any], due_by: str | None) -> tuple[RowHeader, int]:
    listed = body["d"]
    pending = _deadlines(listed, due_by)
    saga = saga_from_dict(body["g"]) if body.get("g") else None
    published = tuple(str(key_id) for key_id in body.get("n") or ())
    header = RowHeader(int(body["p"]), pending, saga, bool(body.get("x")), published)
    return header, len(listed) - len(pending)


def _deadlines(listed: list[list[str]], due_by: str | None) -> tuple[Deadline, ...]:
    """The listed deadlines (rule, ISO due date, case id) due on or before ``due_by`` (None: all)."""
    return tuple(Deadline(rule, date.fromisoformat(due), case_id) for rule, due, case_id in listed
                 if due_by is None or due <= due_by)
