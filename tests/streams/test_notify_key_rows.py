"""When the worker publishes a recipient's notify key (the row that lets it open the personal
part of its notifications): once per citizen and recipient, as the citizen's row remembers,
across a restart too (a key row is sent first and never taken back, see ``Outbox``)."""

from __future__ import annotations

from typing import Any

from sinks.crypto import DataKey, MasterKey
from streams.keystore import KeyStore
from streams.sealing import Sealer


def _sealer() -> tuple[Sealer, list[tuple[str, bytes, Any]]]:
    rows: list[tuple[str, bytes, Any]] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append((topic, row, value))

    master = MasterKey(MasterKey.DEV_KEY)
    keys = KeyStore("unused:9092", "keys", master, send=send)
    made = [(citizen, DataKey.generate()) for citizen in ("c-1", "c-2")]
    keys._keep_all([(citizen, key, master.wrap(key, citizen.encode())) for citizen, key in made])
    return Sealer(keys, dev_mode=True), rows


async def test_a_notify_key_is_published_once_per_citizen_and_recipient() -> None:
    sealer, rows = _sealer()
    published: set[str] = set()
    for n in range(3):
        await sealer.seal_personal("c-1", "jobcenter:851", f"n-{n}", {"cpr": "x"}, published)
    assert len(rows) == 1 and rows[0][0] == "dfdg.notify-keys.jobcenter.851"
    await sealer.seal_personal("c-1", "akasse:24", "n-9", {"cpr": "x"}, published)
    assert len(rows) == 2 and len(published) == 2  # another recipient, another key


async def test_a_row_that_does_not_say_so_gets_the_key_published_again_under_the_same_row_key() -> None:
    """A batch replayed before its row was written: the key row goes out again, harmlessly
    (the same key under the same row key of a compacted topic)."""
    sealer, rows = _sealer()
    await sealer.seal_personal("c-1", "jobcenter:851", "n-1", {"cpr": "x"}, set())
    await sealer.seal_personal("c-1", "jobcenter:851", "n-1", {"cpr": "x"}, set())
    assert len(rows) == 2 and rows[1][1] == rows[0][1]


async def test_a_restarted_worker_does_not_publish_again_what_the_citizens_row_says_was_published() -> None:
    """The row keeps the ids of the notify keys published for the citizen (written with the row,
    after the key rows are acknowledged). A worker that starts afresh reads them and publishes
    none of them again; a recipient the row does not name still gets its key."""
    from processors.model import CitizenState
    from streams.citizen_repo import Citizen, CitizenRepository

    sealer, rows = _sealer()
    table: dict[bytes, bytes] = {}
    citizen = Citizen("c-1", 0, CitizenState(citizen_key="c-1"))
    await sealer.seal_personal("c-1", "jobcenter:851", "n-1", {"cpr": "x"}, citizen.published)
    assert len(rows) == 1 and len(citizen.published) == 1
    await CitizenRepository(table, sealer).save(citizen)

    restarted = Sealer(sealer.keys, dev_mode=True)
    loaded = await CitizenRepository(table, restarted).load("c-1", 0)
    assert loaded.published == citizen.published
    await restarted.seal_personal("c-1", "jobcenter:851", "n-2", {"cpr": "x"}, loaded.published)
    assert len(rows) == 1  # not published again
    await restarted.seal_personal("c-1", "akasse:24", "n-3", {"cpr": "x"}, loaded.published)
    assert len(rows) == 2 and len(loaded.published) == 2


async def test_the_step_writes_the_published_notify_keys_with_the_row_and_a_restart_uses_them() -> None:
    """The real citizen step, twice over the same rows and key store, as a worker and its
    restart: the second new case of a citizen notifies the same jobcentre without its notify
    key being published again."""
    import random
    from datetime import date, timedelta

    from processors.events import CaseCreated
    from schemas.codec import Codec
    from sinks.kafka_out import KafkaOutputs
    from streams.citizen_repo import CitizenRepository
    from streams.citizen_rows import decode_header
    from streams.citizen_step import CitizenStep
    from streams.crash_points import CrashPoints
    from streams.dead_letters import DeadLetters
    from streams.deadlines import DeadlineIndex
    from streams.metrics import Metrics
    from streams.outbox import KafkaSender
    from streams.pseudonym import citizen_key
    from streams.saga import SagaRunner
    from streams.settings import DEV_PSEUDONYM_KEY
    from tests.recording_producer import RecordingProducer
    from tests.streams.test_archive_answer_letters import NOW, TOPIC, Clock
    from tests.streams.test_dead_letter_keys import Msg
    from tests.synthetic import synthetic_cpr

    class ReadyKeyStore(KeyStore):
        async def ready(self) -> None:
            return None

    key_rows: list[tuple[str, bytes, Any]] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        key_rows.append((topic, row, value))

    keys = ReadyKeyStore("unused:9092", "keys", MasterKey(MasterKey.DEV_KEY), send=send)
    cpr = synthetic_cpr(random.Random("notify-key-restart"))
    key = citizen_key(DEV_PSEUDONYM_KEY, cpr)

    def case(n: int) -> bytes:
        return Codec.default().encode(CaseCreated(
            event_id=f"e-{n}", occurred_at=NOW, producer="tests", cpr=cpr, case_id=f"case-{n}",
            receiving_municipality="851", jobcenter_municipality="851", contact_group=18,
            handover_date=date(2026, 1, 1) + timedelta(days=400)))

    def notify_key_rows() -> int:
        return sum(1 for topic, _, _ in key_rows if topic.startswith("dfdg.notify-keys."))

    rows: dict[bytes, bytes] = {}

    def worker() -> CitizenStep:
        """The real step with real outputs over ``rows``; a new Sealer each time (a restart)."""
        sealer, codec, metrics, crash = Sealer(keys, dev_mode=True), Codec.default(), Metrics(), CrashPoints("")
        sender = KafkaSender(RecordingProducer(), 1_000_000)

        async def topic_exists(topic: str) -> None:
            return None

        outputs = KafkaOutputs(codec, lambda t, k, v, h: sender.send(t, k, v, h), topic_exists)
        return CitizenStep(CitizenRepository(rows, sealer), sealer, codec, outputs,
                           DeadLetters(sender, sealer, metrics, "dfdg"),
                           SagaRunner(None, sender, codec, sealer, None, metrics, crash),  # type: ignore[arg-type]
                           DeadlineIndex(), metrics, Clock(), TOPIC, crash)

    await worker().handle(0, [Msg("dfdg.internal.citizen-events", 0, 0, key.encode(), case(1))])
    published = decode_header(rows[key.encode()]).published
    assert notify_key_rows() >= 1 and published

    before = notify_key_rows()
    await worker().handle(0, [Msg("dfdg.internal.citizen-events", 0, 1, key.encode(), case(2))])
    assert notify_key_rows() == before
    assert decode_header(rows[key.encode()]).published == published
