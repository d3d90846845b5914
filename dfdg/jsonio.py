"""Events and records to and from JSON, for the command line and the demo's scenario files."""

from __future__ import annotations

import dataclasses
import typing
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Any

from processors.events import EVENT_TYPES, Event, topic_for

__all__ = ["EVENT_BY_NAME", "event_from_json", "to_jsonable"]

# "case-created" -> CaseCreated (the topic suffix), and the class name itself.
EVENT_BY_NAME: dict[str, type[Event]] = {}
for _t in EVENT_TYPES:
    EVENT_BY_NAME[topic_for(_t).removeprefix("dfdg.")] = _t
    EVENT_BY_NAME[_t.__name__] = _t


class EventJsonError(ValueError):
    pass


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any, name: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value, name)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        return tuple(_convert(inner, v, name) for v in value)
    if tp is date:
        return date.fromisoformat(value) if isinstance(value, str) else value
    if tp is datetime:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return value
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def event_from_json(kind: str, obj: dict[str, Any], producer: str = "dfdg-cli") -> Event:
    """Build a typed event; ``event_id``, ``occurred_at`` and ``producer`` are filled in when absent."""
    try:
        cls = EVENT_BY_NAME[kind]
    except KeyError:
        raise EventJsonError(f"unknown event type {kind!r}; known: "
                             + ", ".join(sorted(k for k in EVENT_BY_NAME if "-" in k))) from None
    hints = _hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(obj) - fields - {"type"}
    if unknown:
        raise EventJsonError(f"{kind}: unknown field(s) {', '.join(sorted(unknown))}")
    values = {k: _convert(hints[k], v, k) for k, v in obj.items() if k in fields}
    values.setdefault("event_id", str(uuid.uuid4()))
    values.setdefault("occurred_at", datetime.now(UTC))
    values.setdefault("producer", producer)
    try:
        return cls(**values)
    except TypeError as exc:
        raise EventJsonError(f"{kind}: {exc}") from None


def to_jsonable(record: Any) -> Any:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, Enum):
        return record.value
    if isinstance(record, datetime | date):
        return record.isoformat()
    if isinstance(record, tuple | list | frozenset | set):
        return [to_jsonable(v) for v in record]
    if isinstance(record, Mapping):
        return {k: to_jsonable(v) for k, v in record.items()}
    return record
