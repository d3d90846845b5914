"""Calendar arithmetic in Europe/Copenhagen, pure: the current time is always passed in.

DOMAIN.md: dates are calendar dates in Europe/Copenhagen, and a date D *has passed* at
00:00 local time on D+1; every deadline fires then. Local midnight never falls in a DST gap
(Denmark switches at 02:00/03:00), so it always exists and is unambiguous.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from processors.reference import LOCAL_TIMEZONE

__all__ = ["LOCAL_ZONE", "add_days", "add_months", "has_passed", "local_date", "passed_at"]

LOCAL_ZONE = ZoneInfo(LOCAL_TIMEZONE)


def _require_aware(now: datetime) -> None:
    # A naive datetime would silently be read as the host's zone; refuse it instead.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def local_date(now: datetime) -> date:
    """The calendar date in Europe/Copenhagen at the instant ``now`` (tz-aware)."""
    _require_aware(now)
    return now.astimezone(LOCAL_ZONE).date()


def passed_at(d: date) -> datetime:
    """The instant ``d`` has passed: 00:00 Europe/Copenhagen on ``d + 1``, as a UTC datetime."""
    local_midnight = datetime.combine(d + timedelta(days=1), time(0), tzinfo=LOCAL_ZONE)
    return local_midnight.astimezone(UTC)


def has_passed(d: date, now: datetime) -> bool:
    """True once ``now`` (tz-aware) is at or after 00:00 local time on the day after ``d``."""
    _require_aware(now)
    return now >= passed_at(d)


def add_days(d: date, days: int) -> date:
    """``d`` plus ``days`` calendar days (negative goes back)."""
    return d + timedelta(days=days)


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clamped to the month's last day (Nov 30 + 3 = Feb 28/29)."""
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(d.day, last_day))
