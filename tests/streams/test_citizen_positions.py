"""The citizen step keeps where its input stands with the rows (``POSITIONS_KEY``): sent to the
changelog with the batch's rows, kept in the local store only once they are acknowledged, never
taken for a citizen. Pure: the real CitizenStep and repository, an in-memory key store and producer;
the loop's use of the positions against a real broker is in test_citizen_loop_kafka.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from schemas.codec import Codec
from streams.citizen_repo import POSITIONS_KEY, CitizenRepository
from streams.citizen_rows import RowHeader, encode_row
from streams.citizen_step import CitizenStep
from streams.crash_points import CrashPoints
from streams.dead_letters import DeadLetters
from streams.deadlines import DeadlineIndex
from streams.metrics import Metrics
from streams.outbox import KafkaSender
from streams.saga import SagaRunner
from streams.sealing import Sealer
from tests.recording_producer import RecordingProducer
from tests.streams.test_archive_answer_letters import TOPIC, Clock, ReadyKeys, _receipt
from tests.streams.test_dead_letter_keys import Msg

CHANGELOG = "dfdg-citizens-changelog"


class Changelog:
    topic = CHANGELOG

    def __init__(self, sender: KafkaSender) -> None:
        self._sender = sender

    async def send(self, partition: int, key: bytes, row: bytes) -> None:
        await self._sender.send(CHANGELOG, key, row, None, partition)

    def persisted(self, offsets: dict[int, int]) -> None:
        pass


class RefusingChangelogProducer(RecordingProducer):
    """The broker refuses the changelog's records (a lost leader, say)."""

    async def send(self, records: Mapping[tuple[str, int], Sequence[Any]]) -> dict[tuple[str, int], int]:
        if any(topic == CHANGELOG for topic, _ in records):
            raise ConnectionError("not the leader")
        return await super().send(records)


def _rig(producer: RecordingProducer, sealer: Sealer | None = None
         ) -> tuple[CitizenStep, CitizenRepository, dict[bytes, bytes]]:
    """The real step and repository over a dict of rows; ``sealer`` defaults to one whose keys
    are always ready."""
    rows: dict[bytes, bytes] = {}
    sealer = sealer or Sealer(ReadyKeys(), dev_mode=True)  # type: ignore[arg-type]
    sender = KafkaSender(producer, 1_000_000)
    metrics, crash = Metrics(), CrashPoints("")
    repo = CitizenRepository(rows, sealer, Changelog(sender))
    saga = SagaRunner(None, sender, None, sealer, None, metrics, crash)  # type: ignore[arg-type]
    step = CitizenStep(repo, sealer, Codec.default(), None,  # type: ignore[arg-type]
                       DeadLetters(sender, sealer, metrics, "dfdg"), saga, DeadlineIndex(), metrics, Clock(), TOPIC,
                       crash)
    return step, repo, rows


async def test_r2_1_each_batch_records_its_next_offsets_with_the_rows() -> None:
    producer = RecordingProducer()
    step, repo, _ = _rig(producer)
    await step.handle(3, [Msg(TOPIC, 3, 7, b"x" * 32, _receipt()), Msg(TOPIC, 3, 8, b"y" * 32, _receipt())])
    assert repo.positions() == {TOPIC: 9}
    # On the changelog, in the partition's own records, after nothing else of the batch.
    sent = [(key, value, partition) for topic, key, value, _, partition in producer.records if topic == CHANGELOG]
    assert sent[-1] == (POSITIONS_KEY, b'{"%s":9}' % TOPIC.encode(), 3)
    # A later batch of the other topic keeps this one's position.
    await step.handle(3, [Msg("dfdg.internal.citizen-events", 3, 41, b"z" * 32, b"")])
    assert repo.positions() == {TOPIC: 9, "dfdg.internal.citizen-events": 42}


async def test_r2_1_positions_are_kept_locally_only_after_the_changelog_has_the_rows() -> None:
    """A local positions row that claims a batch whose rows never reached the changelog would
    stop the batch's replay, and a worker restoring from the changelog would lack those rows."""
    step, repo, rows = _rig(RefusingChangelogProducer())
    with pytest.raises(ConnectionError):
        await step.handle(0, [Msg(TOPIC, 0, 7, b"x" * 32, _receipt())])
    assert POSITIONS_KEY not in rows and repo.positions() == {}


def test_the_positions_row_is_not_a_citizen() -> None:
    rows = {POSITIONS_KEY: b'{"t":1}', b"ab" * 16: encode_row(RowHeader(0, ()), b"{}")}
    repo = CitizenRepository(rows, None)  # type: ignore[arg-type]
    assert [key for key, _ in repo.headers()] == ["ab" * 16]
    assert repo.positions() == {"t": 1}


async def test_r2_1_the_positions_are_in_the_store_before_the_changelog_offset_that_covers_them() -> None:
    """The store keeps no write-ahead log (streams.faust_app.without_write_ahead_log): after a
    crash it holds a prefix of its writes, and a restore starts after the changelog offset it
    holds. Were that offset written before the positions row it covers, a prefix could hold
    the offset and not the row, and the restore would never bring the row back."""
    producer = RecordingProducer()
    step, repo, rows = _rig(producer)
    seen_at_offset: list[bytes | None] = []

    class RecordingChangelog(Changelog):
        def persisted(self, offsets: dict[int, int]) -> None:
            seen_at_offset.append(rows.get(POSITIONS_KEY))

    repo._changelog = RecordingChangelog(KafkaSender(producer, 1_000_000))
    await step.handle(2, [Msg(TOPIC, 2, 4, b"x" * 32, _receipt())])
    assert seen_at_offset == [b'{"%s":5}' % TOPIC.encode()]
