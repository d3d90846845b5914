"""Failed webhook deliveries, kept for replay: one JSON-lines file per subscriber.

The file is named after the subscriber id (``jobcenter_101.jsonl``), never after a citizen;
each line holds the notification id, the pseudonymous citizen key, the exact body sent, why
it failed and when. The body may hold a CPR (the recipient needs it), so it is sealed with a
key derived from the citizen's key for this subscriber (the one that sealed the notification's
personal part, ``sinks.notify_keys``): once the citizen is deleted and that key tombstoned, a
held body can no longer be opened, and replay sends nothing for it and says so.

A row is decided only once the subscriber's keys have been read to the end (``loaded``): until
then a row the store cannot open waits (kept, not sent); after, a citizen without a key has been
deleted. Rows written before the spool was sealed hold the opened CPR in a clear ``body``:
``settle`` seals them in place when the citizen's key is known and drops them when the citizen
has been deleted, so no CPR stays on disk in clear and none is sent after the deletion.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import structlog

from schemas.records import Notification
from sinks.crypto import CryptoError, DataKey, derive_key, open_sealed, seal, sealed_key_id

__all__ = ["FailedDelivery", "FailedDeliveryStore", "SpoolKeys", "SpoolKeysNotLoaded"]

log = structlog.get_logger("sinks.webhook_store")

# What a held body holds besides opened personal fields: the notification as the worker wrote
# it, without its sealed part (``dfdg.webhook_runner`` adds the opened fields beside these).
_ENVELOPE = frozenset(f.name for f in dataclasses.fields(Notification)) - {"personal"}


class SpoolKeysNotLoaded(RuntimeError):
    """A body with personal fields cannot be held yet: the subscriber's keys are not read."""


class SpoolKeys(Protocol):
    """The subscriber's per-citizen keys (``dfdg.subscriber_keys.SubscriberKeys``)."""

    def loaded(self) -> bool:
        """Whether the key topic has been read to its end: only then is a missing key a deletion."""
        ...

    def known(self, citizen: str) -> DataKey | None: ...

    def all_for(self, citizen: str) -> list[DataKey]: ...


def _spool_key(key: DataKey) -> DataKey:
    return derive_key(key, "webhook-spool")


def _aad(citizen_key: str, notification_id: str) -> bytes:
    return f"webhook-spool|{citizen_key}|{notification_id}".encode()


def _carries_personal(body: str) -> bool:
    """Whether a clear body holds personal fields: anything beside the notification's own fields
    was opened from its personal part. A body that is not a JSON object cannot be told: personal."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return True
    return not isinstance(parsed, dict) or bool(set(parsed) - _ENVELOPE)


class _Held(Enum):
    READABLE = "readable"
    DELETED = "deleted"  # the citizen's key is gone: never to be opened or sent
    WAITING = "waiting"  # the subscriber's keys are not loaded yet: decided later


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """One held notification."""

    notification_id: str
    citizen_key: str
    body: str
    reason: str
    attempts: int
    failed_at: str


class FailedDeliveryStore:
    """Append-only (with atomic removal) store of held deliveries for one subscriber.

    With ``keys``, each body is sealed for its citizen; a body without personal fields, held while
    the citizen had no key, is kept as it is. Without ``keys`` nothing is sealed or decided (a
    store opened only to count its rows)."""

    def __init__(self, directory: Path | str, subscriber_id: str, keys: SpoolKeys | None = None) -> None:
        safe = re.sub(r"[^a-z0-9-]", "_", subscriber_id.lower())
        self.subscriber_id = subscriber_id
        self.path = Path(directory) / f"{safe}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys = keys
        self._ids = {row["notification_id"] for row in self._rows()}
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._ids

    def _rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def entries(self) -> list[FailedDelivery]:
        """Held deliveries that can be read now, in the order they were held (per citizen, the
        order they were sent). ``unreadable``: their citizen was deleted; ``waiting``: the keys
        are not loaded yet."""
        return [e for status, e in self._settled() if status is _Held.READABLE and e is not None]

    def unreadable(self) -> list[str]:
        """Ids of held deliveries whose citizen has been deleted: their bodies cannot be opened."""
        return [row["notification_id"] for row in self._rows() if self._open(row)[0] is _Held.DELETED]

    def waiting(self) -> list[str]:
        """Ids of held deliveries that cannot be decided yet: the subscriber's keys are not loaded."""
        return [row["notification_id"] for row in self._rows() if self._open(row)[0] is _Held.WAITING]

    def waiting_citizens(self) -> frozenset[str]:
        """Citizens with a row that cannot be decided yet: their later messages wait behind it."""
        return frozenset(row["citizen_key"] for row in self._rows() if self._open(row)[0] is _Held.WAITING)

    def take_dropped(self) -> int:
        """How many old clear rows were dropped because their citizen was deleted, since last asked."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    def settle(self) -> None:
        """Seal in place each clear row (written before the spool was sealed) whose citizen's key is
        known; drop each one holding personal fields whose citizen has been deleted. Rows that
        cannot be decided yet (keys not loaded) stay for a later call. Call it with the store's lock."""
        if self._keys is None:
            return
        rows = self._rows()
        keep: list[dict[str, Any]] = []
        sealed = dropped = 0
        for row in rows:
            if row.get("sealed_body") is None:
                key = self._keys.known(row["citizen_key"])
                if key is not None:
                    row = self._sealed_row(row, key)
                    sealed += 1
                elif self._keys.loaded() and _carries_personal(row["body"]):
                    dropped += 1
                    self._ids.discard(row["notification_id"])
                    continue
            keep.append(row)
        if not sealed and not dropped:
            return
        self._rewrite(keep)
        self._dropped += dropped
        # Counts only: a row's body may hold a CPR, and its ids say nothing an operator needs here.
        if sealed:
            log.info("webhook.spool.clear-rows-sealed", subscriber=self.subscriber_id, rows=sealed)
        if dropped:
            log.warning("webhook.spool.clear-rows-dropped", subscriber=self.subscriber_id, rows=dropped,
                        reason="their citizens have been deleted; the held bodies are not sent")

    def _settled(self) -> list[tuple[_Held, FailedDelivery | None]]:
        self.settle()
        return [self._open(row) for row in self._rows()]

    def _open(self, row: dict[str, Any]) -> tuple[_Held, FailedDelivery | None]:
        fields = {k: v for k, v in row.items() if k != "sealed_body"}
        sealed = row.get("sealed_body")
        if sealed is None:
            if self._keys is not None and _carries_personal(row["body"]):
                # An old clear row ``settle`` could not decide: never sent in clear on a guess.
                return (_Held.DELETED if self._keys.loaded() else _Held.WAITING), None
            return _Held.READABLE, FailedDelivery(**fields)
        if self._keys is None or not self._keys.loaded():
            return _Held.WAITING, None
        data = base64.b64decode(sealed)
        for key in self._keys.all_for(row["citizen_key"]):
            spool = _spool_key(key)
            if spool.key_id == sealed_key_id(data):
                try:
                    body = open_sealed(spool, data, _aad(row["citizen_key"], row["notification_id"]))
                except CryptoError:
                    return _Held.DELETED, None
                return _Held.READABLE, FailedDelivery(**{**fields, "body": body.decode("utf-8")})
        return _Held.DELETED, None

    @staticmethod
    def _sealed_row(row: dict[str, Any], key: DataKey) -> dict[str, Any]:
        sealed = seal(_spool_key(key), row["body"].encode("utf-8"), _aad(row["citizen_key"], row["notification_id"]))
        return {**row, "body": "", "sealed_body": base64.b64encode(sealed).decode()}

    def citizen_keys(self) -> frozenset[str]:
        """Citizens with held deliveries: their later messages must queue behind them."""
        return frozenset(row["citizen_key"] for row in self._rows())

    def add(self, entry: FailedDelivery) -> bool:
        """Hold ``entry`` durably; a notification already held is not added twice."""
        if entry.notification_id in self._ids:
            return False
        row: dict[str, Any] = asdict(entry)
        key = self._keys.known(entry.citizen_key) if self._keys is not None else None
        if key is not None:
            row = self._sealed_row(row, key)
        elif self._keys is not None and _carries_personal(entry.body):
            if not self._keys.loaded():
                raise SpoolKeysNotLoaded("a body with personal fields is never held in clear")
            # The citizen was deleted since the notification was opened (retries take hours):
            # nothing is held in clear, and nothing may be sent about them now (R7.3).
            log.warning("webhook.spool.not-held", subscriber=self.subscriber_id,
                        reason="the citizen has been deleted; the body is not kept")
            return False
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._ids.add(entry.notification_id)
        return True

    def remove(self, notification_id: str) -> None:
        """Forget a held delivery once it has been delivered, or can no longer be (atomic rewrite)."""
        if notification_id not in self._ids:
            return
        self._rewrite([row for row in self._rows() if row["notification_id"] != notification_id])
        self._ids.discard(notification_id)

    def _rewrite(self, keep: list[dict[str, Any]]) -> None:
        """Replace the file with ``keep`` atomically: a crash leaves the old file or the new one."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
