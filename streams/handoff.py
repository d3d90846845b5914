"""The door's decoded events, handed to the citizen step of the same process.

The door decodes every ingress event to admit it, then seals the publisher's bytes onto the
citizen-events topic. The step, reading them back, opened and decoded them again: ~8% of a
draining worker (py-spy, docs/performance.md), most of it an AES-GCM context for a key the
cipher cache had already dropped while the door ran ahead. When both run in one process, the
door leaves each decoded event bound for a partition this process's step reads here, under the
exact sealed value it sent, and the step takes it when the message it reads from Kafka carries
exactly those bytes for the same citizen.

Kafka stays the only way in: the step still reads every message from the topic, in order, and
this only spares it the work of turning bytes it has read into the event they decode to. What
is not here (a door in another process, an entry dropped to keep the bounds, a restart, a
replay) is opened and decoded as before. The step takes an event from here only while the key
that sealed it is still held, so a citizen shredded in between is refused exactly as the open
would refuse it (E307).

What is held is personal data in clear, so it is bounded in count and bytes, and dropped as
soon as it can no longer be taken: a citizen's entries when their keys are shredded here
(``forget``), a partition's when this process's step stops reading it.

The door does not run far ahead of the step: before a batch it waits, at most ``ROOM_WAIT_S``
in all, while the events left here fill the bound. A step that takes nothing in that time (it
is recovering, or its partitions moved) no longer holds the door back until it takes again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Collection

from processors.events import Event

__all__ = ["HANDOFF_BYTES", "HANDOFF_EVENTS", "ROOM_WAIT_S", "DecodedHandOff"]

# How many decoded events may wait for the step: a few door batches (BATCH_MAX, 1,000 events).
HANDOFF_EVENTS = 4096
# How many sealed bytes they may hold; a decoded event takes about as much again. An event of
# more than a 64th of this is not held: the step opens it, so one large event cannot push out
# dozens of ordinary ones.
HANDOFF_BYTES = 16 * 1024 * 1024
# The longest the door waits for the step to take events before it passes a batch on anyway.
ROOM_WAIT_S = 0.5


class DecodedHandOff:
    def __init__(self, read_here: Callable[[], Collection[int]], capacity: int = HANDOFF_EVENTS,
                 max_bytes: int = HANDOFF_BYTES) -> None:
        """``read_here``: the citizen-events partitions this process's step reads now."""
        self._read_here = read_here
        self._capacity = capacity
        self._max_bytes = max_bytes
        # The oldest first, so the bounds drop what the step is least likely still to read.
        self._held: OrderedDict[bytes, tuple[str, int, Event]] = OrderedDict()
        self._bytes = 0
        self._takes = 0
        self._taken = asyncio.Event()
        self._step_stalled = False
        self._swept_for: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def leave(self, partition: int, owner: str, sealed: bytes, event: Event) -> None:
        """``event`` is what ``sealed`` (sealed for ``owner``, sent to ``partition``) decodes to."""
        if partition not in self._read_here() or len(sealed) > self._max_bytes // 64:
            return  # another process's step reads it, or it is too large to hold
        self._held[sealed] = (owner, partition, event)
        self._bytes += len(sealed)
        while len(self._held) > self._capacity or self._bytes > self._max_bytes:
            dropped, _ = self._held.popitem(last=False)
            self._bytes -= len(dropped)

    def take(self, owner: str, sealed: bytes) -> Event | None:
        """The event the door left for exactly these bytes and this owner, once; None otherwise."""
        held = self._held.pop(sealed, None)
        if held is None:
            return None
        self._bytes -= len(sealed)
        self._takes += 1
        self._step_stalled = False
        self._taken.set()
        if held[0] != owner:
            return None  # the same bytes under another key: only the open can say what they are
        return held[2]

    def forget(self, owner: str) -> None:
        """The citizen's keys are shredded: nothing of theirs stays here in clear."""
        self._drop(lambda entry: entry[0] == owner)

    async def room_for(self, count: int) -> None:
        """Wait, at most ``ROOM_WAIT_S``, while ``count`` more events would overfill the bound and
        the step is taking them."""
        here = frozenset(self._read_here())
        if here != self._swept_for:
            self._drop(lambda entry: entry[1] not in here)  # partitions the step no longer reads
            self._swept_for = here
        deadline, takes = time.monotonic() + ROOM_WAIT_S, self._takes
        while len(self._held) + count > self._capacity and not self._step_stalled:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._taken.clear()
            try:
                await asyncio.wait_for(self._taken.wait(), left)
            except TimeoutError:
                # Nothing taken in all that time: do not wait for this step until it takes again.
                self._step_stalled = self._takes == takes
                return

    def _drop(self, which: Callable[[tuple[str, int, Event]], bool]) -> None:
        for sealed in [sealed for sealed, entry in self._held.items() if which(entry)]:
            del self._held[sealed]
            self._bytes -= len(sealed)
