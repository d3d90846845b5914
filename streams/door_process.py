"""The door in a process of its own (``DFDG_ROLE=door``, ``dfdg worker --role door``).

The door keeps no state and reads the ingress topics in its own consumer group, so it needs
none of Faust's machinery: this is a plain asyncio program around the same ``IngressLoop`` and
``Door`` the combined worker runs. Beside a ``--role steps`` worker it gives each step a core of
its own (docs/performance.md); the two agree only through Kafka, as two workers always have
(a key the door makes reaches the steps' key store through the key topic, and the steps wait
for it briefly: ``KeyTopic.key_by_id``).

A SIGTERM finishes and commits the batch in hand, then stops (a batch that cannot finish, its
acknowledgements failing, ends the process with ``EXIT_REPLAY`` instead: streams.bootstrap);
anything else that ends the loop ends the process the same way, and a restart replays from
the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from streams.bootstrap import build_door_worker, loop_or_exit
from streams.clock import Clock
from streams.logs import get_logger
from streams.settings import Settings

__all__ = ["run_door"]

log = get_logger("dfdg.worker")

# How often the operator gauges (lag) are refreshed, as in the combined worker.
REFRESH_S = 5.0


async def run_door(settings: Settings, clock: Clock) -> int:
    parts = build_door_worker(settings, clock)
    await parts.outgoing.producer.start()
    await parts.outgoing.sealer.start()
    # Awaited, not a task: a port already taken ends the door at once rather than leave it
    # running without /health and /ready.
    await parts.operators.serve(settings.web_host, settings.web_port)
    # Installed once started: a SIGTERM while the keys load ends the process as it is (nothing
    # has been read yet); from here on it finishes the batch in hand first.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    refresh = asyncio.create_task(_every(REFRESH_S, parts.operators.refresh))
    reading = asyncio.create_task(loop_or_exit(parts.ingress.run(), "door"))
    log.info("door started", app_id=settings.app_id, role=settings.role)
    stop_wait = asyncio.create_task(stopping.wait())
    await asyncio.wait({reading, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    log.info("door stopping")
    await parts.ingress.stop()  # the batch in hand is finished and committed first
    await reading
    for task in (refresh, stop_wait):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await parts.outgoing.producer.stop()
    await parts.outgoing.sealer.stop()
    log.info("door stopped")
    return 0


async def _every(seconds: float, call: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        await call()
