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
is not here (a door in another process, an entry dropped to keep the bound, a restart, a
replay) is opened and decoded as before. The step takes an event from here only while the key
that sealed it is still held, so a citizen shredded in between is refused exactly as the open
would refuse it (E307).

The door does not run far ahead of the step: before a batch it waits, up to ``ROOM_WAIT_S``,
while the events left here fill the bound. A step that takes nothing within that time (it is
recovering, or its partitions moved) no longer holds the door back until it takes again, and
the oldest entries are dropped instead.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Collection

from processors.events import Event

__all__ = ["HANDOFF_EVENTS", "ROOM_WAIT_S", "DecodedHandOff"]

# How many decoded events may wait for the step. Each entry holds the sealed bytes and the
# event, ~2 KiB: ~8 MiB at most. A drain's batches are BATCH_MAX (500) events.
HANDOFF_EVENTS = 4096
# The longest the door waits for the step to take events before it passes a batch on anyway.
ROOM_WAIT_S = 0.5


class DecodedHandOff:
    def __init__(self, read_here: Callable[[], Collection[int]], capacity: int = HANDOFF_EVENTS) -> None:
        """``read_here``: the citizen-events partitions this process's step reads now."""
        self._read_here = read_here
        self._capacity = capacity
        # The oldest first, so the bound drops what the step is least likely still to read.
        self._held: OrderedDict[bytes, tuple[str, Event]] = OrderedDict()
        self._taken = asyncio.Event()
        self._step_stalled = False

    def __len__(self) -> int:
        return len(self._held)

    def leave(self, partition: int, owner: str, sealed: bytes, event: Event) -> None:
        """``event`` is what ``sealed`` (sealed for ``owner``, sent to ``partition``) decodes to."""
        if partition not in self._read_here():
            return  # another process's step reads it
        if len(self._held) >= self._capacity:
            self._held.popitem(last=False)
        self._held[sealed] = (owner, event)

    def take(self, owner: str, sealed: bytes) -> Event | None:
        """The event the door left for exactly these bytes and this owner, once; None otherwise."""
        held = self._held.pop(sealed, None)
        if held is None:
            return None
        self._step_stalled = False
        self._taken.set()
        if held[0] != owner:
            return None  # the same bytes under another key: only the open can say what they are
        return held[1]

    async def room_for(self, count: int) -> None:
        """Wait while ``count`` more events would overfill the bound and the step is taking them."""
        while len(self._held) + count > self._capacity and not self._step_stalled:
            self._taken.clear()
            try:
                await asyncio.wait_for(self._taken.wait(), ROOM_WAIT_S)
            except TimeoutError:
                self._step_stalled = True  # until it takes again: the oldest entries go instead
