"""Policy data and pure rules for archive sagas that cannot go on by themselves (R7.2).

Two ways a saga stops, and what starts it again:

    delivery failed   (the inbox is unreachable, the disk full ...): the saga stays ``pending``
                      and is retried with capped exponential backoff, by the worker, unattended
    package rejected  (the archive could not verify it): the saga waits for an operator, who
                      looks at the package and runs ``dfdg archive retry <package>``
    receipt refused   (E308: it does not name the delivered package's checksum): the saga stays
    or never seen     ``delivered`` and waits for a receipt that matches; the archive sends none
                      for a bag it has already received (nor again for one whose receipt came
                      before the saga existed, E309), so an operator's retry delivers anew
    never retried     (a ``pending`` saga from before retries existed, ``retry_at`` unset): due
                      once when the worker rebuilds its sagas (``due_after_recovery``)

Either way nothing archived is deleted before a receipt that matches the delivered package.
Each bound is an *assumption* (the sources give none) and lives here only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.deceased import ArchiveSaga, retry_delivery, with_checksum
from processors.frozen import replace

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "DELIVERY_RETRY_CAP",
    "DELIVERY_RETRY_FIRST",
    "RETRY_BY_OPERATOR",
    "RETRY_BY_TIMER",
    "WAITING_STEPS",
    "RetryPolicy",
    "delivery_allowed",
    "delivery_backoff",
    "due_after_recovery",
    "oldest_wait_seconds",
    "on_delivery_failed",
    "on_retry_requested",
    "retry_due",
    "waiting_by_step",
]

# *Assumption*: the first retry after a failed delivery comes after 30 seconds, each next one
# waits twice as long, and no wait is longer than an hour. A passing fault (a remounted share)
# is over within minutes; a long one should cost one attempt an hour, not a storm of them, and
# the saga gauge shows operators it is stuck well before it matters (R7.2 has no deadline).
DELIVERY_RETRY_FIRST = timedelta(seconds=30)
DELIVERY_RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The backoff after failed deliveries: ``first`` after the first failure, doubling, at most ``cap``.

    Production uses ``DEFAULT_RETRY_POLICY`` (the assumptions above). Only tests pass another, to
    watch a retry within seconds (``DFDG_ARCHIVE_RETRY_*_SECONDS``, dev mode only: streams.settings)."""

    first: timedelta = DELIVERY_RETRY_FIRST
    cap: timedelta = DELIVERY_RETRY_CAP

    def __post_init__(self) -> None:
        if not timedelta(0) < self.first <= self.cap:
            raise ValueError(f"a retry policy needs 0 < first <= cap, not first={self.first}, cap={self.cap}")


DEFAULT_RETRY_POLICY = RetryPolicy()

# Who asked for a retry (ArchiveRetry.requested_by): the worker's backoff timer or an operator.
RETRY_BY_TIMER = "backoff"
RETRY_BY_OPERATOR = "operator"

# Steps in which a saga waits for something outside the worker (delivery, receipt, an operator).
WAITING_STEPS = ("pending", "delivered", "rejected")


def delivery_backoff(failures: int, policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> timedelta:
    """How long to wait after the ``failures``-th failed delivery in a row (1, 2, ...)."""
    doubled = 2 ** max(failures - 1, 0)
    # Compared before multiplying: a long run of failures would overflow a timedelta.
    if doubled >= policy.cap / policy.first:
        return policy.cap
    wait: timedelta = policy.first * doubled
    return wait


def on_delivery_failed(saga: ArchiveSaga, now: datetime, error: str,
                       policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> ArchiveSaga:
    """A delivery failed: stay pending, and try again after the backoff."""
    if saga.step != "pending" or not saga.areas_to_archive:
        return saga
    failures = saga.failed_deliveries + 1
    return replace(saga, failed_deliveries=failures, retry_at=now + delivery_backoff(failures, policy),
                   last_error=error)


def delivery_allowed(saga: ArchiveSaga, now: datetime) -> bool:
    """Whether a pending saga may deliver now: never failed, or its backoff is over."""
    return saga.retry_at is None or now >= saga.retry_at


def retry_due(saga: ArchiveSaga, now: datetime) -> bool:
    """A pending saga whose failed delivery's backoff is over: the timer should wake it."""
    return saga.step == "pending" and saga.retry_at is not None and now >= saga.retry_at


def due_after_recovery(saga: ArchiveSaga) -> bool:
    """A pending saga that owes a delivery but has no retry time: its delivery failed before
    failures were recorded (or it was never tried). Woken once when the worker rebuilds its sagas,
    or nothing would ever deliver it."""
    return saga.step == "pending" and bool(saga.areas_to_archive) and saga.retry_at is None


def on_retry_requested(saga: ArchiveSaga, requested_by: str, now: datetime) -> ArchiveSaga:
    """An ArchiveRetry for this saga's package. An operator's retries a rejected package at once,
    delivers again any delivered package (its receipt refused, E308, or never seen: the archive
    sends none for a bag it has received, and a receipt that came before the saga existed was
    dead-lettered, E309), and cuts a failed delivery's backoff short; the timer's never touches a
    rejected or delivered one."""
    if requested_by != RETRY_BY_OPERATOR:
        return saga
    if saga.step == "rejected":
        return retry_delivery(saga)
    if saga.step == "delivered":
        # Back to delivering. The bags to avoid: the one delivered (received, with no receipt the
        # saga will act on) and any a refused receipt named; any other copy is reused, so a retry
        # replayed after a crash delivers no third bag. ``receipt_refused`` stays until the delivery.
        return replace(saga, step="pending", delivered_sha256=None, failed_deliveries=0, retry_at=None,
                       last_error=None, refused_sha256=with_checksum(saga.refused_sha256, saga.delivered_sha256))
    if saga.step == "pending" and saga.retry_at is not None:
        return replace(saga, retry_at=now)
    return saga


def waiting_by_step(sagas: Iterable[ArchiveSaga]) -> dict[str, int]:
    """How many sagas wait in each waiting step (every step listed, zeros included)."""
    counts = dict.fromkeys(WAITING_STEPS, 0)
    for saga in sagas:
        if saga.step in counts and (saga.step != "pending" or saga.areas_to_archive):
            counts[saga.step] += 1
    return counts


def oldest_wait_seconds(sagas: Iterable[ArchiveSaga], now: datetime) -> float:
    """How long the longest-waiting saga has waited since it began (0: none waits, or none knows)."""
    ages = [(now - s.started_at).total_seconds() for s in sagas
            if s.step in WAITING_STEPS and s.started_at is not None]
    return max([0.0, *ages])
