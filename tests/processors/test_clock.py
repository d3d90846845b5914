"""processors.clock: a date D has passed at 00:00 Europe/Copenhagen on D+1 (DOMAIN.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.clock import add_days, add_months, has_passed, local_date, passed_at

CPH = ZoneInfo("Europe/Copenhagen")
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 30))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 28), datetime(2026, 3, 28, 23, tzinfo=UTC)),  # midnight before the spring switch: CET
        (date(2026, 3, 29), datetime(2026, 3, 29, 22, tzinfo=UTC)),  # the switch day passes in CEST
        (date(2026, 10, 24), datetime(2026, 10, 24, 22, tzinfo=UTC)),  # midnight before the autumn switch: CEST
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, tzinfo=UTC)),  # the switch day passes in CET
        (date(2028, 2, 28), datetime(2028, 2, 28, 23, tzinfo=UTC)),  # passes at the start of the leap day
        (date(2028, 2, 29), datetime(2028, 2, 29, 23, tzinfo=UTC)),  # the leap day passes at 1 March 00:00
        (date(2026, 12, 31), datetime(2026, 12, 31, 23, tzinfo=UTC)),  # year end
    ],
)
def test_passed_at_is_local_midnight_of_next_day_across_dst_and_leap_day(day: date, expected: datetime) -> None:
    assert passed_at(day) == expected
    assert passed_at(day).tzinfo is UTC


def test_has_passed_flips_exactly_at_local_midnight_spring_dst() -> None:
    at = datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert not has_passed(date(2026, 3, 28), at - timedelta(microseconds=1))
    assert has_passed(date(2026, 3, 28), at)


def test_has_passed_flips_exactly_at_local_midnight_autumn_dst() -> None:
    at = datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert not has_passed(date(2026, 10, 24), at - timedelta(seconds=1))
    assert has_passed(date(2026, 10, 24), at)
    # A non-UTC aware datetime is compared by instant, not by wall clock.
    assert has_passed(date(2026, 10, 24), datetime(2026, 10, 25, 0, tzinfo=CPH))


def test_local_date_uses_copenhagen_time() -> None:
    assert local_date(datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC)) == date(2026, 3, 28)
    assert local_date(datetime(2026, 3, 28, 23, tzinfo=UTC)) == date(2026, 3, 29)
    assert local_date(datetime(2028, 2, 29, 23, tzinfo=UTC)) == date(2028, 3, 1)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 3, 28, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        has_passed(date(2026, 3, 28), datetime(2026, 3, 29, 12))


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 11, 30), 3, date(2027, 2, 28)),  # R5.3: clamped to the month end
        (date(2027, 11, 30), 3, date(2028, 2, 29)),  # ... which is the leap day in a leap year
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 3, date(2028, 5, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 10, 15), 3, date(2027, 1, 15)),  # crosses the year
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -3, date(2025, 10, 15)),
    ],
)
def test_r5_3_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_add_days_crosses_leap_day() -> None:
    assert add_days(date(2028, 2, 28), 1) == date(2028, 2, 29)
    assert add_days(date(2028, 1, 30), 30) == date(2028, 2, 29)
    assert add_days(date(2026, 3, 1), -1) == date(2026, 2, 28)


@given(dates)
def test_passed_at_is_midnight_local_and_days_are_23_to_25_hours(day: date) -> None:
    local = passed_at(day).astimezone(CPH)
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)
    assert passed_at(day + timedelta(days=1)) - passed_at(day) in {timedelta(hours=h) for h in (23, 24, 25)}


@given(dates, st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)))
def test_has_passed_agrees_with_local_date(day: date, now: datetime) -> None:
    assert has_passed(day, now) == (local_date(now) > day)


@given(dates, st.integers(min_value=-240, max_value=240))
def test_add_months_moves_the_month_and_never_overshoots_the_day(day: date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day <= day.day
    if result.day < day.day:  # clamped: it is the month's last day
        assert (result + timedelta(days=1)).day == 1
