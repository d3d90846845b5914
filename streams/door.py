"""The door step: one batch of ingress messages admitted, sealed and passed on, effects first.

    1. admit    decode, validate and pseudonymise each message (``streams.ingest.admit``, no I/O)
    2. keys     create the data keys of citizens seen for the first time, and wait for them:
                nothing is sealed with a key the broker does not have yet
    3. pass on  each admitted event, sealed, to its citizen's partition; each refusal to the
                dead-letter topic; then wait for every acknowledgement
    4. commit   return; the door's loop commits the ingress offsets past the batch (streams.ingress_loop)

A crash before the end of 3 replays the batch: the same events are sealed and passed on again
and the citizen step drops the duplicates (handled event ids are remembered in the state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.reference import E301_CITIZEN_DECEASED, E901_PROCESSING_FAILED
from schemas.codec import Codec
from streams.clock import Clock
from streams.dead_letters import DeadLetters
from streams.handoff import DecodedHandOff
from streams.ingest import Admitted, Refused, admit
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.outbox import KafkaSender, Outbox
from streams.sealing import Sealer

__all__ = ["Door"]

log = get_logger("dfdg.worker")


class Door:
    def __init__(self, codec: Codec, sealer: Sealer, sender: KafkaSender, dead_letters: DeadLetters,
                 metrics: Metrics, clock: Clock, pseudonym_key: bytes, citizen_events_topic: str,
                 handoff: DecodedHandOff | None = None) -> None:
        self._codec = codec
        self._sealer = sealer
        self._sender = sender
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._secret = pseudonym_key
        self._topic = citizen_events_topic
        # The step of this process, when it runs here too, takes the decoded event from here.
        self._handoff = handoff

    async def handle(self, messages: Sequence[Any]) -> None:
        if self._handoff is not None:
            await self._handoff.room_for(len(messages))  # not far ahead of the step (streams.handoff)
        now = self._clock.now()
        results = [(msg, admit(msg.value, self._codec, self._secret, now, msg.topic)) for msg in messages]
        await self._sealer.keys.ready()
        await self._sealer.keys.ensure(self._owner(msg, result) for msg, result in results)
        with Outbox() as box:
            for msg, result in results:
                mark = box.mark()
                try:
                    await self._pass_on(msg, result)
                except Exception as exc:  # noqa: BLE001 - one bad message must not stop the partition
                    box.rollback(mark)
                    log.error("door failed", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                              error=type(exc).__name__)
                    await self._dead_letters.send(msg, self._owner(msg, result), E901_PROCESSING_FAILED,
                                                  f"the door could not pass this event on ({type(exc).__name__}); "
                                                  "it is kept here for replay after a fix", type(exc).__name__)
            await box.acknowledged()

    def _owner(self, msg: Any, result: Admitted | Refused) -> str:
        return self._dead_letters.owner_for(msg, result.citizen_key)

    async def _pass_on(self, msg: Any, result: Admitted | Refused) -> None:
        if isinstance(result, Refused):
            await self._dead_letters.send(msg, self._owner(msg, result), result.code, result.message,
                                          result.exception_class)
            return
        if self._sealer.keys.is_erased(result.citizen_key):
            # R7.3: nothing of a deleted citizen is kept again, not even sealed in a dead letter.
            await self._dead_letters.send_without_value(
                msg, result.citizen_key, E301_CITIZEN_DECEASED, "the citizen has died and their data has been "
                "deleted; no new facts are accepted (R7.3), and this event's value is not kept")
            return
        self._metrics.event_in(type(result.event).__name__)
        sealed = await self._sealer.seal_event(result.citizen_key, msg.value)
        # The publisher's key and headers go on sealed, with its coordinates (streams.origin).
        origin = await self._sealer.origin_headers_for(result.citizen_key, msg)
        key = result.citizen_key.encode()
        partition = await self._sender.partition_for(self._topic, key)
        await self._sender.send(self._topic, key, sealed, origin, partition)
        if self._handoff is not None:
            self._handoff.leave(partition, result.citizen_key, sealed, result.event)
