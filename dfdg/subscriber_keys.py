"""The subscriber's side of sealed notifications: its notification keys, read from its own
key topic and unwrapped with its key-encryption key (see ``sinks.notify_keys``)."""

from __future__ import annotations

import json

from schemas.records import Notification
from sinks.crypto import open_sealed, sealed_key_id
from sinks.notify_keys import notify_keys_topic, personal_aad, subscriber_kek, unwrap_for_subscriber
from streams.key_topic import KeyTopic

__all__ = ["SubscriberKeys"]


class SubscriberKeys(KeyTopic):
    def __init__(self, bootstrap: str, subscriber_id: str, kek: bytes | None = None) -> None:
        key_encryption_key = kek if kek is not None else subscriber_kek(subscriber_id)
        super().__init__(bootstrap, notify_keys_topic(subscriber_id),
                         lambda citizen, wrapped: unwrap_for_subscriber(key_encryption_key, wrapped, citizen,
                                                                        subscriber_id))

    async def personal(self, notification: Notification, wait_s: float = 5.0) -> dict[str, str] | None:
        """The notification's personal fields in clear, or None when it carries none.
        Raises ``UnknownKey`` once the citizen has been deleted (the key is shredded), and
        ``KeysUnavailable`` when the key topic cannot be read to its end within ``wait_s``
        (the broker, not the citizen: nothing is to be concluded about the personal part)."""
        if not notification.personal:
            return None
        key = await self.key_by_id(notification.citizen_key, sealed_key_id(notification.personal), wait_s)
        opened: dict[str, str] = json.loads(open_sealed(key, notification.personal,
                                                        personal_aad(notification.notification_id)))
        return opened
