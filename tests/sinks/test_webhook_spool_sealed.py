"""The webhook spool is sealed per citizen (issue 13, point 4): no CPR on disk or in a file
name, and once the citizen's key is gone the held body cannot be read and is not sent."""

from __future__ import annotations

import random
from pathlib import Path

from sinks.crypto import DataKey
from sinks.webhook_store import FailedDelivery, FailedDeliveryStore
from tests.synthetic import synthetic_cpr

CPR = synthetic_cpr(random.Random("webhook-spool"))
CITIZEN = "a" * 64


class Keys:
    def __init__(self) -> None:
        self.keys: dict[str, list[DataKey]] = {CITIZEN: [DataKey.generate()]}

    def loaded(self) -> bool:
        return True

    def known(self, citizen: str) -> DataKey | None:
        return (self.keys.get(citizen) or [None])[0]

    def all_for(self, citizen: str) -> list[DataKey]:
        return list(self.keys.get(citizen, []))


def _held(tmp_path: Path, keys: Keys) -> FailedDeliveryStore:
    store = FailedDeliveryStore(tmp_path, "jobcenter:101", keys=keys)
    store.add(FailedDelivery("n-1", CITIZEN, f'{{"cpr":"{CPR}","kind":"case-created"}}', "503", 3, "2026-01-01"))
    return store


def test_a_held_body_is_sealed_on_disk_and_opens_for_replay(tmp_path: Path) -> None:
    keys = Keys()
    store = _held(tmp_path, keys)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert CPR.encode() not in on_disk and all(CPR not in p.name for p in tmp_path.iterdir())
    (entry,) = FailedDeliveryStore(tmp_path, "jobcenter:101", keys=keys).entries()
    assert CPR in entry.body and store.unreadable() == []


def test_after_the_citizens_deletion_the_spool_cannot_be_read_and_replay_sends_nothing(tmp_path: Path) -> None:
    import asyncio

    from sinks.webhook import WebhookDispatcher, WebhookEndpoint

    keys = Keys()
    store = _held(tmp_path, keys)
    keys.keys.pop(CITIZEN)  # the worker tombstoned the subscriber's key rows (R7)
    assert store.entries() == [] and store.unreadable() == ["n-1"]

    async def replay() -> tuple[int, int]:
        dispatcher = WebhookDispatcher(WebhookEndpoint("jobcenter:101", "http://127.0.0.1:9/never", "whsec_"
                                                       + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), store)
        count = await dispatcher.replay()
        await dispatcher.close()
        return count, dispatcher.shredded

    assert asyncio.run(replay()) == (0, 1)
    assert len(store) == 0 and CPR.encode() not in store.path.read_bytes()


async def test_a_delivery_the_store_refuses_for_a_deleted_citizen_does_not_park_their_queue(tmp_path: Path) -> None:
    from sinks.webhook import Outcome, WebhookDispatcher, WebhookEndpoint, WebhookMessage, _Item

    keys = Keys()
    keys.keys.pop(CITIZEN)  # deleted while the delivery was being retried
    store = FailedDeliveryStore(tmp_path, "jobcenter:101", keys=keys)
    dispatcher = WebhookDispatcher(WebhookEndpoint("jobcenter:101", "http://127.0.0.1:9/never", "whsec_"
                                                   + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), store)
    import asyncio

    message = WebhookMessage("n-2", CITIZEN, f'{{"cpr":"{CPR}","kind":"case-created"}}'.encode())
    outcome = dispatcher._hold(_Item(message, asyncio.get_running_loop().create_future()), "503", 3)
    await dispatcher.close()
    assert outcome is Outcome.HELD and "n-2" not in store and len(store) == 0
    assert CITIZEN not in dispatcher._parked  # nothing waits behind a message that was never held
    assert CPR.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
