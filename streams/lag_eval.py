"""Burrow-style consumer lag evaluation, as a pure function over a sliding window.

Burrow (linkedin/Burrow, "Consumer Lag Evaluation Rules") judges a consumer by how its
committed offset and lag behave over a window instead of by a lag threshold. We poll
rather than read ``__consumer_offsets``, so a window entry is one *observation*
(when we looked, the committed offset, the log-end offset) plus, when known, the time
of the group's last commit. The rules, in the order they are applied:

1. ERR    - the window is empty or an observation is impossible (negative offsets,
            committed offset beyond the log end).
2. REWIND - the committed offset went backwards inside the window and the consumer has
            not caught up (lag 0) since.
3. OK     - the lag was zero at some observation in the window (Burrow's rule 1): an idle
            group with nothing to read is healthy, with or without members.
4. STOP   - lagging throughout and no commit within the window: the last commit is at or
            before the window's first observation.
5. STALL  - lagging throughout, still committing, but the committed offset never moved.
6. WARN   - lagging throughout, the offset moves, but the lag never shrinks and ends
            higher than it started: the consumer is falling behind.
7. OK     - otherwise.

A group takes the worst status of its partitions (``worst``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Observation", "Status", "evaluate", "worst"]


class Status(StrEnum):
    """Partition or group status; ``severity`` orders them for ``worst``."""

    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    REWIND = "REWIND"
    ERR = "ERR"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Status.OK: 0, Status.WARN: 1, Status.STALL: 2, Status.STOP: 3, Status.REWIND: 4, Status.ERR: 5}


@dataclass(frozen=True)
class Observation:
    """One look at a partition: ``timestamp`` (epoch seconds) when we looked.

    ``last_commit_at`` is when the group last committed, if the caller knows; when it is
    ``None`` the evaluator takes the first observation showing the current committed
    offset as the latest evidence of a commit.
    """

    timestamp: float
    committed_offset: int
    end_offset: int
    last_commit_at: float | None = None

    @property
    def lag(self) -> int:
        return max(self.end_offset - self.committed_offset, 0)


def _invalid(obs: Observation) -> bool:
    return obs.committed_offset < 0 or obs.end_offset < 0 or obs.committed_offset > obs.end_offset


def _unrecovered_rewind(window: Sequence[Observation]) -> bool:
    rewound_at = None
    for i in range(1, len(window)):
        if window[i].committed_offset < window[i - 1].committed_offset:
            rewound_at = i
    if rewound_at is None:
        return False
    # Burrow #716: a rewind the consumer has already worked off is history, not a fault.
    return all(obs.lag > 0 for obs in window[rewound_at:])


def _last_commit(window: Sequence[Observation]) -> float:
    latest = window[-1]
    if latest.last_commit_at is not None:
        return latest.last_commit_at
    start = len(window) - 1
    while start > 0 and window[start - 1].committed_offset == latest.committed_offset:
        start -= 1
    return window[start].timestamp


def evaluate(window: Sequence[Observation]) -> Status:
    """The Burrow status of one partition over ``window`` (oldest observation first)."""
    if not window or any(_invalid(obs) for obs in window):
        return Status.ERR
    if _unrecovered_rewind(window):
        return Status.REWIND
    if any(obs.lag == 0 for obs in window):
        return Status.OK
    if len(window) < 2:
        # One lagging observation says nothing about movement yet.
        return Status.OK
    if _last_commit(window) <= window[0].timestamp and window[-1].timestamp > window[0].timestamp:
        return Status.STOP
    if all(obs.committed_offset == window[0].committed_offset for obs in window):
        return Status.STALL
    lags = [obs.lag for obs in window]
    if all(b >= a for a, b in itertools.pairwise(lags)) and lags[-1] > lags[0]:
        return Status.WARN
    return Status.OK


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status; OK when there is none (an idle group with no partitions)."""
    return max(statuses, key=lambda s: s.severity, default=Status.OK)
