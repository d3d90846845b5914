"""Letters for archive answers (receipts, rejections, retries on the archive-receipts topic) are
sealed for their owner like every other letter, and replay still sends them back to the receipts
topic as the archive published them (review finding M1; H2's E309 letter says to replay it).
Pure: the real CitizenStep, SagaRunner, DeadLetters and Sealer, an in-memory key store and producer."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Any

import pytest

import dfdg.publisher
from dfdg.cmd_dead_letters import _next_step, _replay
from dfdg.dead_letter_view import Letter, Opener, answer_target, replay_target
from processors.archival import package_id_for
from processors.reference import E309_ARCHIVE_ANSWER_UNMATCHED, E901_PROCESSING_FAILED
from schemas.archive_records import ArchiveReceipt
from schemas.codec import Codec
from schemas.topics import archive_receipts_topic
from sinks.crypto import is_sealed, open_sealed
from streams.citizen_repo import CitizenRepository
from streams.citizen_step import CitizenStep
from streams.crash_points import CrashPoints
from streams.dead_letters import DeadLetters
from streams.deadlines import DeadlineIndex
from streams.metrics import Metrics
from streams.outbox import KafkaSender
from streams.saga import SagaRunner
from streams.sealing import Sealer, event_aad
from tests.recording_producer import RecordingProducer
from tests.streams.test_dead_letter_keys import MemoryKeys, Msg

TOPIC = archive_receipts_topic("dfdg")
KEY = "ab" * 16
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class ReadyKeys(MemoryKeys):
    async def ready(self) -> None:
        return None


class Clock:
    def now(self) -> datetime:
        return NOW


def _rig() -> tuple[CitizenStep, ReadyKeys, RecordingProducer]:
    producer = RecordingProducer()
    keys = ReadyKeys()
    sealer = Sealer(keys, dev_mode=True)  # type: ignore[arg-type]
    codec, metrics, crash = Codec.default(), Metrics(), CrashPoints("")
    sender = KafkaSender(producer, 1_000_000)
    letters = DeadLetters(sender, sealer, metrics, "dfdg")
    saga = SagaRunner(None, sender, codec, sealer, None, metrics, crash)  # type: ignore[arg-type]
    step = CitizenStep(CitizenRepository({}, sealer), sealer, codec, None, letters, saga,  # type: ignore[arg-type]
                       DeadlineIndex(), metrics, Clock(), TOPIC, crash)
    return step, keys, producer


def _receipt() -> bytes:
    receipt = ArchiveReceipt(receipt_id="r-1", package_id=package_id_for(KEY, date(2024, 5, 1)), citizen_key=KEY,
                             tagmanifest_sha256="cd" * 32, payload_oxum="1.1", received_at=NOW)
    return Codec.default().encode(receipt)


def _letter(producer: RecordingProducer) -> Letter:
    ((_topic, key, value, headers),) = [r for r in producer.sent if r[0] == "dfdg.dead-letter"]
    return Letter(0, key, value or b"", headers)


async def test_m1_an_e309_letter_for_a_receipt_is_sealed_and_says_to_replay_it_once_the_saga_exists() -> None:
    step, keys, producer = _rig()
    raw = _receipt()
    await step.handle(0, [Msg(TOPIC, 0, 7, KEY.encode(), raw)])
    letter = _letter(producer)
    assert letter.header("dlq.error.code") == E309_ARCHIVE_ANSWER_UNMATCHED
    # Sealed for its owner (dfdg.dead-letter keeps letters for ever), not the answer as it came.
    assert is_sealed(letter.value) and raw not in letter.value
    owner = letter.header("dlq.sealed-for")
    assert open_sealed(keys.keys[owner], letter.value, event_aad(owner)) == raw
    # H2: a receipt handled before the replayed death gets a letter that says what to do.
    assert "replay this letter" in letter.header("dlq.error.message")
    assert "dfdg dead-letters replay" in letter.header("dlq.error.message")


async def test_m1_an_e901_letter_on_the_receipts_topic_is_sealed_too() -> None:
    step, _keys, producer = _rig()
    await step.handle(0, [Msg(TOPIC, 0, 8, KEY.encode(), b"not an archive answer")])
    letter = _letter(producer)
    assert letter.header("dlq.error.code") == E901_PROCESSING_FAILED
    assert is_sealed(letter.value) and b"not an archive answer" not in letter.value


class MemoryOpener(Opener):
    def __init__(self, keys: MemoryKeys) -> None:
        super().__init__("127.0.0.1:1")
        self._keys = keys

    async def _open(self, letter: Letter, sealed: bytes, aad: bytes) -> bytes:
        return open_sealed(self._keys.keys[letter.header("dlq.sealed-for")], sealed, aad)


class RecordingPublisher:
    sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []

    def __init__(self, bootstrap: str) -> None:
        pass

    async def __aenter__(self) -> RecordingPublisher:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None,
                          headers: list[tuple[str, bytes]] | None = None) -> None:
        self.sent.append((topic, value, key, list(headers or [])))


async def test_m1_replay_opens_a_sealed_archive_answer_back_onto_the_receipts_topic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    step, keys, producer = _rig()
    raw = _receipt()
    headers = [("dfdg.schema", b"ArchiveReceipt")]
    await step.handle(0, [Msg(TOPIC, 0, 7, KEY.encode(), raw, headers)])
    letter = _letter(producer)
    assert replay_target(letter) is None and answer_target(letter) == TOPIC
    assert "replay" in _next_step(letter, "b:9092")
    RecordingPublisher.sent = []
    monkeypatch.setattr(dfdg.publisher, "Publisher", RecordingPublisher)
    args = argparse.Namespace(all=True, offset=[], code=None, bootstrap="b:9092")
    assert await _replay(args, [letter], MemoryOpener(keys)) == 0
    # Exactly what the archive published: its value, its key (the citizen key), its headers.
    assert RecordingPublisher.sent == [(TOPIC, raw, KEY.encode(), headers)]


def test_m1_an_unsealed_answer_letter_from_before_is_replayed_as_stored() -> None:
    letter = Letter(0, b"dlq-x", _receipt(), [("dlq.topic", TOPIC.encode())])
    assert answer_target(letter) is None and replay_target(letter) is None
