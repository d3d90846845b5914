"""Named crash points, for the tests that prove a crash anywhere loses nothing.

``DFDG_TEST_CRASH_AT=<point>`` (or ``<point>:<citizen key>``, to crash on one citizen only)
makes the worker end itself with SIGKILL when it reaches the point: no flush, no commit, no
goodbye to the group, exactly as if the machine died there. Unset, each call is one dict
lookup. The points, in the order a step reaches them:

    after-effects            outputs acknowledged, state not yet written
    after-changelog          rows and input positions acknowledged on the changelog, the
                             positions not yet kept in the local store
    after-state              state written, offsets not yet committed
    after-flushed-state      (with a citizen key only) every batch's table stores flushed to
                             disk after its state is written, until the batch holding that
                             citizen, which is crashed on unflushed: the stores keep no
                             write-ahead log, so the restart finds a flushed prefix with its
                             changelog offset, and must restore the rest from the changelog
    after-archive-delivery   package in the archive inbox, saga not yet written
    after-deletion-notices   deletion notices acknowledged, keys not yet shredded
    after-shred              keys shredded, erasure marker not yet written
    mid-bulk-restore         at a start, one run of a changelog partition written to the
                             store with its offset, the rest of the restore not yet read
    mid-standby-follow       one run of a standby copy's changelog written to the store with
                             its offset, the rest not yet read
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Collection

from streams.logs import get_logger

__all__ = ["CRASH_ENV", "POINTS", "CrashPoints"]

CRASH_ENV = "DFDG_TEST_CRASH_AT"
POINTS = ("after-effects", "after-changelog", "after-state", "after-flushed-state", "after-archive-delivery",
          "after-deletion-notices", "after-shred", "mid-bulk-restore", "mid-standby-follow")

log = get_logger("dfdg.worker")


class CrashPoints:
    def __init__(self, setting: str | None = None, flush: Callable[[], None] | None = None) -> None:
        """``flush``: writes the table's stores to disk (``after-flushed-state``)."""
        raw = os.environ.get(CRASH_ENV, "") if setting is None else setting
        point, _, citizen = raw.partition(":")
        if point and point not in POINTS:
            raise ValueError(f"{CRASH_ENV}: unknown crash point; choose one of {', '.join(POINTS)}")
        if point == "after-flushed-state" and not citizen:
            raise ValueError(f"{CRASH_ENV}: after-flushed-state needs a citizen key (after-flushed-state:<key>)")
        self._point = point
        self._citizen = citizen
        self._flush = flush

    async def at(self, point: str, citizen: str = "") -> None:
        self.reached(point, citizen)

    def reached(self, point: str, citizen: str = "", **facts: int) -> None:
        """``at`` for code that cannot await (a write callback); ``facts`` are logged with the
        crash, so a test can tell how far the worker got."""
        if point != self._point or (self._citizen and citizen != self._citizen):
            return
        log.warning("test hook: crashing", point=point, **facts)
        os.kill(os.getpid(), signal.SIGKILL)

    def flushed_until(self, point: str, citizens: Collection[str]) -> None:
        """At the end of a batch that touched ``citizens``: flush the stores, or crash (unflushed)
        if the batch holds the point's citizen."""
        if point != self._point:
            return
        if self._citizen in citizens:
            self.reached(point, self._citizen)
        elif self._flush is not None:
            self._flush()

    def armed(self, point: str) -> bool:
        return point == self._point
