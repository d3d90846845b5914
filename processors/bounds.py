"""Policy data: how big a value may be and how far a date may lie from today, at the door.

Everything a publisher sends can end up in a citizen's state, a deadline, a notification or a
dead letter. These bounds keep a single event from growing that state without limit (a 100 kB
case id, a million job titles, a deadline in year 9999) and catch typos and defaults (year 1,
1900-01-01) before they reach a rule. ``processors.validation`` applies them to every field of
every event, before any other check; violations carry ``E211 value-too-long`` or
``E212 date-out-of-range``.

Each bound is an *assumption* (the sources give none) and lives here only, so it can be changed
in one place. The date windows are functions of ``today`` so they move with time.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

__all__ = [
    "DEADLINE_ID_MAX_LENGTH",
    "EARLIEST_PLAUSIBLE_DATE",
    "FACT_DATE_MAX_YEARS_AHEAD",
    "FAULT_FACT_TOO_LATE",
    "FAULT_OCCURRED_AT_TOO_EARLY",
    "FAULT_OCCURRED_AT_TOO_LATE",
    "FAULT_TOO_EARLY",
    "FREE_TEXT_FIELDS",
    "MAX_ID_LENGTH",
    "MAX_LIST_ITEMS",
    "MAX_TEXT_LENGTH",
    "OCCURRED_AT_MAX_DAYS_AHEAD",
    "fact_date_window",
    "max_length",
    "occurred_at_window",
]

# --- Lengths, in characters (Python ``len`` of the decoded string). ---------------------------

# *Assumption*: an id or a code (case_id, absence_id, record_id, result_id, event_id, cv_number,
# akasse, municipality codes, producer, registered_by / deleted_by / requested_by subscriber ids,
# benefit_category, case_type, rule, ...) is at most 128 characters. The ids we know are far
# shorter (a UUID is 36, a subscriber id like "jobcenter:101" 13); 128 leaves room for prefixed or
# composite ids from other systems and still keeps a key of the state small. Every string field
# not named in FREE_TEXT_FIELDS is treated as an id or a code.
MAX_ID_LENGTH = 128

# *Assumption*: free text (a person's name, a deregistration reason, a contract's employment or
# education goal, one job title) is at most 1,000 characters: a full paragraph. Names in the CPR
# register and Jobnet job titles are well under 200; a goal is a sentence or two.
MAX_TEXT_LENGTH = 1_000

# The string fields that hold free text (checked against MAX_TEXT_LENGTH, per item for a list).
FREE_TEXT_FIELDS: frozenset[str] = frozenset({"name", "reason", "employment_goal", "education_goal", "job_titles"})

# *Assumption*: a list field (job_titles, the titles a job seeker seeks, R10.1) has at most 50
# items. A job seeker names a handful; 50 is generous and bounds one registration to ~50 kB.
MAX_LIST_ITEMS = 50

# A deadline id is "<rule>|<case or record id>|<YYYY-MM-DD>" (processors.model.Deadline), so it
# may exceed MAX_ID_LENGTH by a rule (e.g. "R2.1:INTEGRATION_CONTRACT"), two separators and a date.
DEADLINE_ID_MAX_LENGTH = MAX_ID_LENGTH + 48

# --- Dates. ----------------------------------------------------------------------------------

# *Assumption*: no fact this pipeline handles (handover, takeover, deadline, absence start or end,
# registration, contract, follow-up, referral record, screening result, death), and no event's
# occurred_at, is dated before 1 January 2000. The integration act (integrationsloven) took
# effect on 1 January 1999 and its programmes run about three years; the retention periods here
# (R8: two years, six months) have long run out for anything older. An earlier date is a typo or
# a default (0001-01-01, 1900-01-01), not a fact. Birth dates are not checked here: they live in
# the CPR and follow its century rule.
EARLIEST_PLAUSIBLE_DATE = date(2000, 1, 1)

# *Assumption*: a fact date lies at most 10 years after today. Legitimately future dates are a
# handover a few months ahead, a CV deadline 60 days after it (R1.4), an absence or exemption
# planned to end within a few years; 10 years covers all of them with room. Any later date would
# only keep a deadline pending for decades (or is 9999-12-31 meaning "open": send null instead).
FACT_DATE_MAX_YEARS_AHEAD = 10

# *Assumption*: an event's occurred_at (its Copenhagen calendar date) is at most 1 day after the
# pipeline's today. An event reports something that has happened; a day covers clock skew between
# publisher and pipeline and the midnight boundary. Later means the publisher's clock is wrong.
# (A worker on a shifted clock, DFDG_NOW, must be sent events stamped in its shifted time.)
OCCURRED_AT_MAX_DAYS_AHEAD = 1

# The fault a date outside its window points to, named in the refusal so the publisher fixes
# the right thing (a year-1 creation time is a missing timestamp, not a citizen under 15).
# *Assumption*, from the values seen in test feeds: an early date is an unset or default value,
# a late fact date a sentinel for "open", a late occurred_at a clock that runs ahead.
FAULT_TOO_EARLY = "an unset or default date (such as 0001-01-01 or 1900-01-01) or a typo, not a real fact"
FAULT_FACT_TOO_LATE = "a far-future sentinel for 'no end' or a typo; for an open end send null"
FAULT_OCCURRED_AT_TOO_EARLY = ("an unset or default timestamp (such as year 1 or 1900), not when the event happened; "
                               "check that the publisher sets occurred_at and the publisher's clock")
FAULT_OCCURRED_AT_TOO_LATE = "later than the event can have happened; check the publisher's clock"


def max_length(field: str) -> int:
    """The most characters a string in ``field`` may have (each item, for a list field)."""
    if field in FREE_TEXT_FIELDS:
        return MAX_TEXT_LENGTH
    if field == "deadline_id":
        return DEADLINE_ID_MAX_LENGTH
    return MAX_ID_LENGTH


# Every event of a day asks for the same windows: computed once per day (a pure function).
@lru_cache(maxsize=8)
def fact_date_window(today: date) -> tuple[date, date]:
    """The first and last plausible date of a fact (inclusive) on ``today``; never raises."""
    return EARLIEST_PLAUSIBLE_DATE, _years_after(today, FACT_DATE_MAX_YEARS_AHEAD)


@lru_cache(maxsize=8)
def occurred_at_window(today: date) -> tuple[date, date]:
    """The first and last plausible Copenhagen date of an event's occurred_at (inclusive); never raises."""
    return EARLIEST_PLAUSIBLE_DATE, _days_after(today, OCCURRED_AT_MAX_DAYS_AHEAD)


def _years_after(day: date, years: int) -> date:
    """The same day ``years`` later (28 Feb for 29 Feb in a common year); date.max past the calendar's end."""
    year = day.year + years
    if year > date.max.year:
        return date.max
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _days_after(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max
