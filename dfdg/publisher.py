"""The publisher's client: typed events in, Avro single-object messages out, with the same
validation the pipeline applies at its door, so most mistakes never reach Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType

from aiokafka import AIOKafkaProducer

from processors.clock import local_date
from processors.events import Event, topic_for
from processors.validation import Violation, validate
from schemas.codec import Codec
from streams.kafka_auth import client_config

__all__ = ["PublishRejected", "Publisher"]


class PublishRejected(ValueError):
    """The event breaks the contract; ``violations`` say which rule and how to fix it."""

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.code} {v.field}: {v.message}" for v in violations))


class Publisher:
    """``async with Publisher(bootstrap) as p: await p.publish(event)``.

    Messages are keyed by ``event_id``, never by CPR; the pipeline re-keys by a pseudonymous
    citizen key before anything depends on order. ``validate=False`` sends an event as it is
    (for testing the pipeline's own door)."""

    def __init__(self, bootstrap: str, codec: Codec | None = None, **producer_config: object) -> None:
        self._codec = codec or Codec.default()
        # The login comes from KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_*; explicit config wins.
        config: dict[str, object] = {**client_config(), **producer_config}
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                          linger_ms=5, **config)  # type: ignore[arg-type]

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._producer.stop()

    def check(self, event: Event) -> None:
        violations = validate(event, local_date(datetime.now(UTC)))
        if violations:
            raise PublishRejected(violations)

    async def publish(self, event: Event, *, validate_first: bool = True, wait: bool = True) -> None:
        if validate_first:
            self.check(event)
        future = await self._producer.send(topic_for(type(event)), self._codec.encode(event),
                                           key=event.event_id.encode(), headers=self._codec.headers_for(event))
        if wait:
            await future

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None,
                          headers: list[tuple[str, bytes]] | None = None) -> None:
        """Send bytes as they are (dead-letter replay, tests of the door)."""
        await self._producer.send_and_wait(topic, value, key=key, headers=headers or [])

    async def flush(self) -> None:
        await self._producer.flush()
