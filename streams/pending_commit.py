"""A batch's offset commit on its way while the loop handles the next batch.

The door's and the citizen step's loops share one thread; waiting out each commit's round trip
left that thread idle (a drain measured ~14% idle, part of it in these waits). So a loop sends
the commit and goes on, and awaits it before it sends the next: at most one is on its way, and
they land in order. Whoever must know it landed (a stop, a hand-over of partitions, the loop's
end) waits for it here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from streams.logs import get_logger

__all__ = ["PendingCommit"]

log = get_logger("dfdg.worker")


class PendingCommit:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def send(self, commit: Coroutine[Any, Any, None]) -> None:
        """Start ``commit``; the one before must have been awaited (``landed``)."""
        if self._task is not None:
            commit.close()
            raise RuntimeError("a commit is still on its way: await landed() first")
        self._task = asyncio.ensure_future(commit)

    @property
    def finished(self) -> bool:
        """Nothing on its way, or it has landed or failed (``landed`` returns at once)."""
        return self._task is None or self._task.done()

    async def landed(self) -> None:
        """Wait for the commit on its way, if any; its failure is raised (the loop stops on it).
        A cancelled wait leaves the commit on its way (``abandon`` or ``settled`` then)."""
        task = self._task
        if task is None:
            return
        try:
            await asyncio.shield(task)
        finally:
            if task.done():
                self._task = None

    async def settled(self) -> None:
        """Wait for the commit on its way to land or fail, without raising and without cancelling
        it: for a stop and a hand-over, and a loop's clean end, where a failed commit means only
        that its batch is read again."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task])
        if task is not None:
            _retrieved(task)

    def abandon(self) -> None:
        """A loop ending on an error or a cancellation: it must not wait for a broker that may be
        gone (a commit retries for as long as the coordinator is unavailable), so the commit is
        left to land or fail by itself; one that never lands means only that its batch is read
        again."""
        task, self._task = self._task, None
        if task is not None:
            task.add_done_callback(_retrieved)


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a batch's commit failed; its messages will be read again",
                    error=type(task.exception()).__name__)
