"""Keys that let a subscriber open the personal part of its own notifications.

A notification's personal fields (the CPR the recipient needs to act) are sealed with a key
derived from the citizen's data key for that one recipient. The derived key reaches the
recipient on its own compacted topic ``dfdg.notify-keys.<role>.<id>``, wrapped with the
recipient's key-encryption key (KEK). When the citizen is deleted, the worker writes a
tombstone there and destroys the citizen's data key: the recipient's old notifications can no
longer be opened, on the topic or in any copy of it, once compaction has run
(``max.compaction.lag.ms``), and the pipeline itself can never derive the key again.

Why not in clear: the subscriber topic keeps 30 days of notifications, and a deleted citizen's
CPR must not stay readable in Kafka for 30 days. Why not sealed with a key only the pipeline
holds: the subscriber is entitled to the CPR and must be able to read it without asking us.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sinks.crypto import CryptoError, DataKey, MasterKey, cipher_for, derive_key
from sinks.nonces import random_bytes

__all__ = [
    "notify_key_for",
    "notify_keys_topic",
    "personal_aad",
    "subscriber_kek",
    "unwrap_for_subscriber",
    "wrap_for_subscriber",
]


def notify_keys_topic(subscriber_id: str) -> str:
    role, _, ident = subscriber_id.partition(":")
    return f"dfdg.notify-keys.{role}.{ident}"


def notify_key_for(citizen_key: DataKey, subscriber_id: str) -> DataKey:
    return derive_key(citizen_key, f"notify|{subscriber_id}")


def subscriber_kek(subscriber_id: str, dev_mode: bool | None = None) -> bytes:
    """The subscriber's key-encryption key: a 64-hex-char file ``<role>-<id>.kek`` in
    ``DFDG_SUBSCRIBER_KEKS_DIR`` (handed to the subscriber with its Kafka credentials), or, in
    dev mode only, one derived from the development master key."""
    role, _, ident = subscriber_id.partition(":")
    if directory := os.environ.get("DFDG_SUBSCRIBER_KEKS_DIR"):
        path = Path(directory) / f"{role}-{ident}.kek"
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
    if dev_mode is None:
        from sinks.config import dev_mode as dev_mode_setting

        dev_mode = dev_mode_setting()
    if dev_mode:
        return HKDF(algorithm=SHA256(), length=32, salt=None,
                    info=f"dev-subscriber-kek|{subscriber_id}".encode()).derive(MasterKey.DEV_KEY)
    from sinks.config import ConfigError

    raise ConfigError(f"no key-encryption key for {subscriber_id}: put {role}-{ident}.kek in "
                      "DFDG_SUBSCRIBER_KEKS_DIR (or set DFDG_DEV_MODE=1 for development keys)")


def personal_aad(notification_id: str) -> bytes:
    """Binds a notification's sealed personal part to that notification: it cannot be pasted into another."""
    return f"notification|{notification_id}".encode()


def _aad(citizen: str, subscriber_id: str) -> bytes:
    return hashlib.sha256(f"{citizen}|{subscriber_id}".encode()).digest()


def wrap_for_subscriber(kek: bytes, key: DataKey, citizen: str, subscriber_id: str) -> bytes:
    nonce = random_bytes(12)
    return key.key_id + nonce + cipher_for(kek).encrypt(nonce, key.secret, _aad(citizen, subscriber_id))


def unwrap_for_subscriber(kek: bytes, wrapped: bytes, citizen: str, subscriber_id: str) -> DataKey:
    try:
        secret = cipher_for(kek).decrypt(wrapped[16:28], wrapped[28:], _aad(citizen, subscriber_id))
    except Exception as exc:
        raise CryptoError("a notification key does not unwrap with this subscriber's key") from exc
    return DataKey(wrapped[:16], secret)
