"""Failed webhook deliveries, kept for replay: one JSON-lines file per subscriber.

The file is named after the subscriber id (``jobcenter_101.jsonl``), never after a citizen;
each line holds the notification id, the pseudonymous citizen key, the exact body sent, why
it failed and when. The body may hold a CPR (the recipient needs it), so the directory must
be as protected as the notification topics.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["FailedDelivery", "FailedDeliveryStore"]


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
    """Append-only (with atomic removal) store of held deliveries for one subscriber."""

    def __init__(self, directory: Path | str, subscriber_id: str) -> None:
        safe = re.sub(r"[^a-z0-9-]", "_", subscriber_id.lower())
        self.path = Path(directory) / f"{safe}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ids = {e.notification_id for e in self.entries()}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._ids

    def entries(self) -> list[FailedDelivery]:
        """Held deliveries in the order they were held (per citizen, the order they were sent)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [FailedDelivery(**json.loads(line)) for line in f if line.strip()]

    def citizen_keys(self) -> frozenset[str]:
        """Citizens with held deliveries: their later messages must queue behind them."""
        return frozenset(e.citizen_key for e in self.entries())

    def add(self, entry: FailedDelivery) -> bool:
        """Hold ``entry`` durably; a notification already held is not added twice."""
        if entry.notification_id in self._ids:
            return False
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._ids.add(entry.notification_id)
        return True

    def remove(self, notification_id: str) -> None:
        """Forget a held delivery once it has been delivered (atomic rewrite)."""
        if notification_id not in self._ids:
            return
        keep = [e for e in self.entries() if e.notification_id != notification_id]
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._ids.discard(notification_id)
