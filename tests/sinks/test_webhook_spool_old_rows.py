"""Held deliveries written before the spool was sealed (a clear body with the CPR, no
``sealed_body``), and keys that are not loaded yet (issue 13, point 4).

An old clear row is sealed in place once its citizen's key is known, and dropped (counted and
logged without a CPR) once the subscriber's keys are loaded and the citizen has none: deleted.
While the keys are not loaded, nothing is decided: every row stays, nothing is sent.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from structlog.testing import capture_logs

from sinks.crypto import DataKey
from sinks.webhook import WebhookDispatcher, WebhookEndpoint
from sinks.webhook_store import FailedDelivery, FailedDeliveryStore
from tests.synthetic import synthetic_cpr

CPR = synthetic_cpr(random.Random("webhook-spool-old-rows"))
CITIZEN = "b" * 64
SUB = "jobcenter:101"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVELOPE = {"notification_id": "n-old", "recipient": SUB, "citizen_key": CITIZEN, "kind": "case-created",
            "cause_event_id": "e-1", "cause_type": "CaseCreated", "created_at": "2026-01-01T00:00:00+00:00",
            "details": {"case_id": "case-1"}}


class Keys:
    """The subscriber's keys as ``dfdg.subscriber_keys.SubscriberKeys`` holds them."""

    def __init__(self, *, loaded: bool = True, has_key: bool = True, key: DataKey | None = None) -> None:
        self.ready = loaded
        self.keys: dict[str, list[DataKey]] = {CITIZEN: [key or DataKey.generate()]} if has_key else {}

    def loaded(self) -> bool:
        return self.ready

    def known(self, citizen: str) -> DataKey | None:
        return (self.keys.get(citizen) or [None])[0] if self.ready else None

    def all_for(self, citizen: str) -> list[DataKey]:
        return list(self.keys.get(citizen, [])) if self.ready else []


def _old_row(tmp_path: Path, notification_id: str = "n-old", *, personal: bool = True) -> Path:
    """A row as the store wrote it before sealing: the opened CPR in a clear body."""
    body = {**ENVELOPE, "notification_id": notification_id, **({"cpr": CPR} if personal else {})}
    row = {"notification_id": notification_id, "citizen_key": CITIZEN, "body": json.dumps(body),
           "reason": "refused with HTTP 500", "attempts": 1, "failed_at": "2026-01-01T00:00:00+00:00"}
    path = tmp_path / "jobcenter_101.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return path


def _replay(store: FailedDeliveryStore) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        dispatcher = WebhookDispatcher(WebhookEndpoint(SUB, "http://127.0.0.1:9/never", SECRET), store)
        count = await dispatcher.replay()
        await dispatcher.abort()  # nothing may have been queued; never wait on a retry
        return count, dispatcher.shredded

    return asyncio.run(run())


def test_an_old_clear_row_is_sealed_in_place_once_the_citizens_key_is_known(tmp_path: Path) -> None:
    path = _old_row(tmp_path)
    assert CPR.encode() in path.read_bytes()
    store = FailedDeliveryStore(tmp_path, SUB, keys=Keys())
    with capture_logs() as logs:
        store.settle()
    assert CPR.encode() not in path.read_bytes()
    assert json.loads(path.read_text())["sealed_body"]
    (entry,) = store.entries()
    assert CPR in entry.body and entry.notification_id == "n-old"
    assert [e["rows"] for e in logs if e["event"] == "webhook.spool.clear-rows-sealed"] == [1]
    assert CPR not in repr(logs)


def test_an_old_clear_row_of_a_deleted_citizen_is_dropped_on_load_and_replay_sends_nothing(tmp_path: Path) -> None:
    path = _old_row(tmp_path)
    _old_row(tmp_path, "n-old-2")
    store = FailedDeliveryStore(tmp_path, SUB, keys=Keys(has_key=False))  # keys loaded: the citizen has none
    with capture_logs() as logs:
        assert _replay(store) == (0, 2)
    assert CPR.encode() not in path.read_bytes() and len(store) == 0
    dropped = [e for e in logs if e["event"] == "webhook.spool.clear-rows-dropped"]
    assert [e["rows"] for e in dropped] == [2] and dropped[0]["subscriber"] == SUB
    assert CPR not in repr(logs)


def test_while_the_keys_are_not_loaded_every_row_stays_and_nothing_is_sent(tmp_path: Path) -> None:
    key = DataKey.generate()
    keys = Keys(loaded=False, key=key)
    sealed = FailedDeliveryStore(tmp_path, SUB, keys=Keys(key=key))  # a row sealed under the citizen's key
    sealed.add(FailedDelivery("n-sealed", CITIZEN, json.dumps({**ENVELOPE, "cpr": CPR}), "503", 3, "2026-01-01"))
    path = _old_row(tmp_path)
    store = FailedDeliveryStore(tmp_path, SUB, keys=keys)
    assert _replay(store) == (0, 0)  # not "deleted": the keys are simply not read yet
    assert sorted(store.waiting()) == ["n-old", "n-sealed"] and store.unreadable() == []
    assert len(FailedDeliveryStore(tmp_path, SUB)) == 2
    # Once the keys are loaded the same store seals the old row and both can be replayed.
    keys.ready = True
    assert sorted(e.notification_id for e in store.entries()) == ["n-old", "n-sealed"]
    assert CPR.encode() not in path.read_bytes() and store.waiting() == []


def test_an_old_clear_row_without_personal_fields_stays_readable_without_a_key(tmp_path: Path) -> None:
    _old_row(tmp_path, personal=False)
    store = FailedDeliveryStore(tmp_path, SUB, keys=Keys(has_key=False))
    (entry,) = store.entries()
    assert entry.notification_id == "n-old" and store.unreadable() == []


def test_a_body_with_a_cpr_is_never_written_in_clear_when_its_citizen_has_been_deleted(tmp_path: Path) -> None:
    # The key was tombstoned between opening the notification and holding it (retries take hours).
    store = FailedDeliveryStore(tmp_path, SUB, keys=Keys(has_key=False))
    with capture_logs() as logs:
        added = store.add(FailedDelivery("n-1", CITIZEN, json.dumps({**ENVELOPE, "cpr": CPR}), "503", 3, "2026-01-01"))
    assert added is False and len(store) == 0
    assert not store.path.exists() or CPR.encode() not in store.path.read_bytes()
    assert CPR not in repr(logs)
