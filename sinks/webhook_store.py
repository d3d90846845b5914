"""Failed webhook deliveries, kept for replay: one JSON-lines file per subscriber.

The file is named after the subscriber id (``jobcenter_101.jsonl``), never after a citizen;
each line holds the notification id, the pseudonymous citizen key, the exact body sent, why
it failed and when. The body may hold a CPR (the recipient needs it), so it is sealed with a
key derived from the citizen's key for this subscriber (the one that sealed the notification's
personal part, ``sinks.notify_keys``): once the citizen is deleted and that key tombstoned, a
held body can no longer be opened, and replay sends nothing for it and says so.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sinks.crypto import CryptoError, DataKey, derive_key, open_sealed, seal, sealed_key_id

__all__ = ["FailedDelivery", "FailedDeliveryStore", "SpoolKeys"]


class SpoolKeys(Protocol):
    """The subscriber's per-citizen keys (``dfdg.subscriber_keys.SubscriberKeys``)."""

    def known(self, citizen: str) -> DataKey | None: ...

    def all_for(self, citizen: str) -> list[DataKey]: ...


def _spool_key(key: DataKey) -> DataKey:
    return derive_key(key, "webhook-spool")


def _aad(citizen_key: str, notification_id: str) -> bytes:
    return f"webhook-spool|{citizen_key}|{notification_id}".encode()


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

    With ``keys``, each body is sealed for its citizen; a body held while the citizen had no key
    carries no personal part (the runner leaves it out then) and is kept as it is."""

    def __init__(self, directory: Path | str, subscriber_id: str, keys: SpoolKeys | None = None) -> None:
        safe = re.sub(r"[^a-z0-9-]", "_", subscriber_id.lower())
        self.path = Path(directory) / f"{safe}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys = keys
        self._ids = {row["notification_id"] for row in self._rows()}

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
        """Held deliveries that can still be read, in the order they were held (per citizen,
        the order they were sent). See ``unreadable`` for those whose citizen was deleted."""
        return [e for e in (self._open(row) for row in self._rows()) if e is not None]

    def unreadable(self) -> list[str]:
        """Ids of held deliveries whose citizen has been deleted: their bodies cannot be opened."""
        return [row["notification_id"] for row in self._rows() if self._open(row) is None]

    def _open(self, row: dict[str, Any]) -> FailedDelivery | None:
        fields = {k: v for k, v in row.items() if k != "sealed_body"}
        sealed = row.get("sealed_body")
        if sealed is None:
            return FailedDelivery(**fields)
        data = base64.b64decode(sealed)
        keys = self._keys.all_for(row["citizen_key"]) if self._keys is not None else []
        for key in keys:
            spool = _spool_key(key)
            if spool.key_id == sealed_key_id(data):
                try:
                    body = open_sealed(spool, data, _aad(row["citizen_key"], row["notification_id"]))
                except CryptoError:
                    return None
                return FailedDelivery(**{**fields, "body": body.decode("utf-8")})
        return None

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
            sealed = seal(_spool_key(key), entry.body.encode("utf-8"), _aad(entry.citizen_key, entry.notification_id))
            row["body"], row["sealed_body"] = "", base64.b64encode(sealed).decode()
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
        keep = [row for row in self._rows() if row["notification_id"] != notification_id]
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._ids.discard(notification_id)
