"""The one clock the worker reads. Real time by default; shifted (``--now`` / DFDG_NOW) for
demos and checks, optionally running faster than real time (DFDG_CLOCK_SPEED)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "ShiftedClock", "SystemClock", "clock_from_setting"]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """Starts at ``start`` and advances ``speed`` times faster than the wall clock."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        self._start = start
        self._speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)


class ManualClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta


_OFFSET = re.compile(r"^([+-]\d+(?:\.\d+)?)([dhms])$")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def clock_from_setting(setting: str, speed: float = 1.0) -> Clock:
    """``""`` -> real time; ``2026-03-01T00:00`` (local Copenhagen time unless it has an offset)
    or ``+120d`` -> shifted time."""
    setting = setting.strip()
    if not setting and speed == 1.0:
        return SystemClock()
    if not setting:
        return ShiftedClock(datetime.now(UTC), speed)
    if m := _OFFSET.match(setting):
        delta = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        return ShiftedClock(datetime.now(UTC) + delta, speed)
    parsed = datetime.fromisoformat(setting)
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo("Europe/Copenhagen"))
    return ShiftedClock(parsed.astimezone(UTC), speed)
