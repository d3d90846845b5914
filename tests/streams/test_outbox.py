"""The outbox's contract: key rows go first, a failed message's outputs are never sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.outbox import KafkaSender, Outbox
from tests.recording_producer import RecordingProducer


class CallRecorder(RecordingProducer):
    """Also remembers each ``send`` call's topics, to see what went out before what."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[set[str]] = []

    async def send(self, records: Mapping[tuple[str, int], Sequence[Any]]) -> dict[tuple[str, int], int]:
        self.calls.append({topic for topic, _ in records})
        return await super().send(records)


async def test_key_rows_are_acknowledged_before_the_notifications_that_need_them() -> None:
    producer = CallRecorder()
    sender = KafkaSender(producer, 1_000_000)
    with Outbox() as box:
        await sender.send("notify.jobcenter.851", b"c1", b"notice")
        await sender.send("notify-keys.jobcenter.851", b"c1:k", b"wrapped", first=True)
        assert await box.acknowledged() == 2
    assert producer.calls == [{"notify-keys.jobcenter.851"}, {"notify.jobcenter.851"}]


async def test_a_rolled_back_message_sends_none_of_its_outputs_but_keeps_its_key_rows() -> None:
    producer = RecordingProducer()
    sender = KafkaSender(producer, 1_000_000)
    with Outbox() as box:
        await sender.send("out", b"c0", b"kept: before the mark")
        mark = box.mark()
        await sender.send("keys", b"c1:k", b"wrapped", first=True)
        await sender.send("out", b"c1", b"death notice of a failed message")
        await sender.send("other", b"c1", b"and another output")
        box.rollback(mark)
        await sender.send("dead-letter", b"c1", b"its dead letter")
        await box.acknowledged()
    assert [(topic, value) for topic, _, value, _ in producer.sent] == [
        ("keys", b"wrapped"), ("out", b"kept: before the mark"), ("dead-letter", b"its dead letter")]


async def test_a_rollback_after_a_flush_forgets_only_what_came_after_the_flush() -> None:
    producer = RecordingProducer()
    sender = KafkaSender(producer, 1_000_000)
    with Outbox() as box:
        mark = box.mark()
        await sender.send("out", b"c1", b"acknowledged mid-message (a saga phase)")
        await box.acknowledged()
        await sender.send("out", b"c1", b"after the flush")
        box.rollback(mark)
        assert len(box) == 0
        await box.acknowledged()
    assert [value for _, _, value, _ in producer.sent] == [b"acknowledged mid-message (a saga phase)"]
