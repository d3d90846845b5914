"""Dead letters carry no publisher key in clear and always name the publisher's message
(issue 13, point 2), checked on the real DeadLetters and Sealer with an in-memory key store."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sinks.crypto import DataKey, open_sealed, sealed_key_id
from sinks.dead_letter import DLQ_ORIGINAL, without_values
from streams.dead_letters import DeadLetters
from streams.keystore import UnknownKey
from streams.metrics import Metrics
from streams.origin import unpack_envelope
from streams.outbox import KafkaSender
from streams.sealing import Sealer, event_aad, origin_aad
from tests.recording_producer import RecordingProducer
from tests.synthetic import synthetic_cpr

CPR = synthetic_cpr(random.Random("dead-letter-keys"))
CITIZEN = "c" * 64


class MemoryKeys:
    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}

    async def key_for(self, owner: str) -> DataKey:
        return self.keys.setdefault(owner, DataKey.generate())

    async def key_by_id(self, owner: str, key_id: bytes, wait_s: float = 0) -> DataKey:
        key = self.keys.get(owner)
        if key is None or key.key_id != key_id:
            raise UnknownKey("shredded")
        return key

    def is_erased(self, owner: str) -> bool:
        return False


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: float = 1700000000.0


def _rig() -> tuple[DeadLetters, Sealer, list[tuple[str, bytes | None, bytes | None, Any]]]:
    producer = RecordingProducer()
    sealer = Sealer(MemoryKeys(), dev_mode=True)  # type: ignore[arg-type]
    return DeadLetters(KafkaSender(producer, 1_000_000), sealer, Metrics(), "dfdg-test"), sealer, producer.sent


def _everything(record: tuple[str, bytes | None, bytes | None, Any]) -> bytes:
    _topic, key, value, headers = record
    return (key or b"") + (value or b"") + b"".join(k.encode() + v for k, v in headers)


def _opened_original(sealer: Sealer, owner: str, headers: list[tuple[str, bytes]]) -> tuple[bytes | None, list]:
    sealed = dict(headers)[DLQ_ORIGINAL]
    key = sealer.keys.keys[owner]  # type: ignore[attr-defined]
    return unpack_envelope(open_sealed(key, sealed, origin_aad(owner)))


async def test_a_cpr_keyed_message_refused_at_the_door_is_keyed_by_its_citizen_and_keeps_the_key_sealed() -> None:
    letters, sealer, sent = _rig()
    msg = Msg("dfdg.case-created", 1, 42, CPR.encode(), b"\xc3\x01value-with-" + CPR.encode(),
              [("x-cpr", CPR.encode())])
    await letters.send(msg, CITIZEN, "E202 invalid-municipality", "receiving_municipality: bad", "ValidationError")
    (record,) = sent
    assert record[1] == CITIZEN.encode()
    assert CPR.encode() not in _everything(record)
    headers = dict(record[3])
    assert headers["dlq.topic"] == b"dfdg.case-created" and headers["dlq.offset"] == b"42"
    assert _opened_original(sealer, CITIZEN, record[3]) == (CPR.encode(), [("x-cpr", CPR.encode())])


async def test_a_letter_that_names_no_citizen_is_keyed_by_a_digest_not_the_publishers_key() -> None:
    letters, _sealer, sent = _rig()
    msg = Msg("dfdg.case-created", 0, 7, CPR.encode(), b"not avro")
    await letters.send(msg, letters.owner_for(msg, None), "E101 not-single-object", "no marker", "CodecError")
    (record,) = sent
    assert record[1] is not None and record[1].startswith(b"dlq-") and CPR.encode() not in _everything(record)


async def test_a_letter_after_the_door_names_the_ingress_coordinates_and_key() -> None:
    letters, sealer, sent = _rig()
    ingress = Msg("dfdg.handover-date-passed", 3, 99, CPR.encode(), b"raw", [("content-type", b"avro")])
    origin = await sealer.origin_headers_for(CITIZEN, ingress)
    internal_value = await sealer.seal_event(CITIZEN, b"raw")
    internal = Msg("dfdg.internal.citizen-events", 5, 1234, CITIZEN.encode(), internal_value, origin)
    await letters.send(internal, CITIZEN, "E302 unknown-case", "case 'c-1' is not known", "Rejected",
                       sealed_value=internal.value)
    (record,) = sent
    headers = dict(record[3])
    assert (headers["dlq.topic"], headers["dlq.partition"], headers["dlq.offset"]) == (
        b"dfdg.handover-date-passed", b"3", b"99")
    assert headers["dlq.error.message"] == b"case <value> is not known"
    assert _opened_original(sealer, CITIZEN, record[3]) == (CPR.encode(), [("content-type", b"avro")])
    key = sealer.keys.keys[CITIZEN]  # type: ignore[attr-defined]
    assert sealed_key_id(record[2]) == key.key_id and open_sealed(key, record[2], event_aad(CITIZEN)) == b"raw"
    assert not any(k.startswith("dfdg.origin") for k, _ in record[3])  # the internal hop's headers stay inside


async def test_a_publisher_cannot_forge_its_origin_headers() -> None:
    _letters, sealer, _sent = _rig()
    forged = Msg("dfdg.case-created", 0, 1, None, b"v", [("dfdg.origin.topic", b"dfdg.citizen-deceased")])
    headers = dict(await sealer.origin_headers_for(CITIZEN, forged))
    assert headers["dfdg.origin.topic"] == b"dfdg.case-created"


def test_rejection_messages_never_repeat_quoted_values_or_a_cpr() -> None:
    assert without_values("case 'c-1' exists with other facts") == "case <value> exists with other facts"
    assert CPR not in without_values(f"deleted_by {CPR} is not a subscriber")
    assert without_values("state would be 1234567 bytes") == "state would be 1234567 bytes"


def test_the_sealed_envelope_gives_back_any_key_and_headers_as_they_came() -> None:
    """The door packs the publisher's key and headers (any bytes, any header names) to seal them."""
    from streams.origin import pack_envelope

    for key, headers in ((None, []), (b"\x00\xff" * 40, [("ø-navn", b"\x80"), ("trace", b""), ("trace", b"2")])):
        assert unpack_envelope(pack_envelope(key, headers)) == (key, headers)
