"""Outputs to Kafka: notifications on subscriber topics, data-area-closed and fetch refusals,
dead letters. One adapter over a ``send`` function, so the same code runs on the worker's batch
producer (through its step's outbox) and on a plain aiokafka producer in tools and tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from processors.model import CitizenState, DataAreaClosedOut, FetchRefused
from processors.pipeline import Delivery
from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from schemas.records import DataAreaClosed, Notification
from schemas.records import FetchRefused as FetchRefusedRecord
from schemas.topics import DATA_AREA_CLOSED, FETCH_REFUSED

__all__ = ["KafkaOutputs", "Send", "notification_for"]

Headers = Sequence[tuple[str, bytes]]
Send = Callable[[str, bytes | None, bytes, Headers], Awaitable[object]]
EnsureTopic = Callable[[str], Awaitable[None]]


def notification_for(delivery: Delivery, state: CitizenState, now: datetime,
                     personal: bytes | None = None) -> Notification:
    """The envelope one subscriber receives: thin, with the CPR the recipient needs to act on
    its own case sealed for that recipient alone (``personal``, see docs/security.md)."""
    notice = delivery.notice
    return Notification(
        notification_id=delivery.notification_id,
        recipient=delivery.recipient,
        citizen_key=state.citizen_key,
        kind=notice.kind,
        cause_event_id=notice.cause_event_id,
        cause_type=notice.cause_type,
        created_at=now,
        personal=personal,
        details=dict(notice.details),
    )


class KafkaOutputs:
    def __init__(self, codec: Codec, send: Send, ensure_topic: EnsureTopic) -> None:
        self._codec = codec
        self._send = send
        self._ensure_topic = ensure_topic
        self._known_topics: set[str] = set()

    async def _emit(self, topic: str, key: str, record: object) -> None:
        await self._send(topic, key.encode(), self._codec.encode(record), self._codec.headers_for(record))

    async def notify(self, delivery: Delivery, state: CitizenState, now: datetime,
                     personal: bytes | None = None) -> str:
        topic = topic_for_subscriber(delivery.recipient)
        if topic not in self._known_topics:
            await self._ensure_topic(topic)
            self._known_topics.add(topic)
        await self._emit(topic, state.citizen_key, notification_for(delivery, state, now, personal))
        return topic

    async def data_area_closed(self, out: DataAreaClosedOut, citizen_key: str, now: datetime) -> None:
        await self._emit(DATA_AREA_CLOSED, citizen_key, DataAreaClosed(
            event_id=out.output_id, citizen_key=citizen_key, case_id=out.case_id, data_area=out.data_area,
            closed_on=out.closed_on, occurred_at=now))

    async def fetch_refused(self, out: FetchRefused, citizen_key: str, now: datetime) -> None:
        await self._emit(FETCH_REFUSED, citizen_key, FetchRefusedRecord(
            event_id=out.output_id, citizen_key=citizen_key, cause_event_id=out.cause_event_id,
            case_id=out.case_id, data_area=out.data_area, reason=out.reason, occurred_at=now))
