"""Hypothesis strategies for every registered record, derived from the dataclass type hints.

Values are drawn across each Avro type's full range (instants truncated to milliseconds,
the precision ``timestamp-millis`` carries), so a round trip must give back an equal record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from hypothesis import strategies as st

__all__ = ["damaged", "records"]

_INSTANTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))


def _for(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | st.one_of(*[_for(m) for m in members])
    if origin is tuple:
        return st.lists(_for(typing.get_args(tp)[0]), max_size=4).map(tuple)
    if origin in (Mapping, dict):
        key, value = typing.get_args(tp)
        return st.dictionaries(_for(key), _for(value), max_size=4)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=20),
        bytes: st.binary(max_size=40),
        bool: st.booleans(),
        int: st.integers(min_value=-(2**31), max_value=2**31 - 1),
        float: st.floats(allow_nan=False),
        date: st.dates(),
        datetime: _INSTANTS,
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return records(tp)
    raise TypeError(f"no strategy for {tp!r}")


def records(cls: type) -> st.SearchStrategy[Any]:
    """Instances of the frozen dataclass ``cls`` with every field drawn from its type."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _for(hints[f.name]) for f in dataclasses.fields(cls)})


def damaged(encoded: bytes, data: st.DataObject, start: int = 0) -> bytes:
    """``encoded`` with one to four bytes changed, cut, inserted or appended at or after ``start``."""
    out = bytearray(encoded)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "append"]))
        at = data.draw(st.integers(min_value=start, max_value=max(len(out) - 1, start)))
        if action == "flip" and at < len(out):
            out[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del out[at:at + data.draw(st.integers(min_value=1, max_value=8))]
        elif action == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            out += data.draw(st.binary(min_size=1, max_size=8))
    return bytes(out)
