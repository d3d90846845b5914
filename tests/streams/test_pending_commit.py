"""``streams.pending_commit``: a batch's commit on its way while the next batch is handled."""

from __future__ import annotations

import asyncio
import gc

import pytest

from streams.pending_commit import PendingCommit


async def _commit(log: list[str], name: str, gate: asyncio.Event, fail: bool = False) -> None:
    await gate.wait()
    if fail:
        raise ConnectionError("the coordinator went away")
    log.append(name)


async def test_one_commit_at_a_time_and_landed_waits_for_it() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    pending = PendingCommit()
    assert pending.finished
    pending.send(_commit(log, "first", gate))
    assert not pending.finished
    with pytest.raises(RuntimeError):
        pending.send(_commit(log, "second", gate))  # the one before was not awaited
    waiting = asyncio.ensure_future(pending.landed())
    await asyncio.sleep(0)
    assert not waiting.done()
    gate.set()
    await waiting
    assert log == ["first"] and pending.finished
    await pending.landed()  # nothing on its way: at once


async def test_a_failed_commit_is_raised_to_the_loop_and_only_logged_to_those_who_wait_besides() -> None:
    gate = asyncio.Event()
    pending = PendingCommit()
    pending.send(_commit([], "first", gate, fail=True))
    settling = asyncio.ensure_future(pending.settled())
    gate.set()
    await settling  # a stop or a hand-over: returns, does not raise
    with pytest.raises(ConnectionError):
        await pending.landed()  # the loop: stops on it


async def test_settled_cancelled_does_not_cancel_the_commit() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    pending = PendingCommit()
    pending.send(_commit(log, "first", gate))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pending.settled(), 0.05)  # a hand-over that gave up waiting
    gate.set()
    await pending.landed()
    assert log == ["first"]


async def test_a_cancelled_wait_leaves_the_commit_on_its_way() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    pending = PendingCommit()
    pending.send(_commit(log, "first", gate))
    waiting = asyncio.ensure_future(pending.landed())
    await asyncio.sleep(0)
    waiting.cancel()  # the loop is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not pending.finished  # still on its way, not cancelled with the wait
    gate.set()
    await pending.landed()
    assert log == ["first"]


async def test_an_abandoned_commit_is_not_waited_for_and_its_failure_is_only_logged() -> None:
    """A loop that failed must exit now, not once a broker that may be gone answers."""
    reported: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
    gate = asyncio.Event()
    pending = PendingCommit()
    pending.send(_commit([], "first", gate, fail=True))
    pending.abandon()  # returns at once, though the commit has not landed
    assert pending.finished
    await pending.landed()  # nothing left to wait for
    gate.set()
    await asyncio.sleep(0.01)  # it fails by itself
    gc.collect()
    assert reported == []  # no "Task exception was never retrieved"
