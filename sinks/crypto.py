"""Crypto-shredding primitives: per-citizen data keys (AES-256-GCM) wrapped by a master key.

Everything personal that the pipeline writes to Kafka is sealed with the citizen's data key.
Deleting a citizen destroys that key, so every copy — in topic logs, consumer caches and
backups — becomes unreadable at once, without rewriting a single log.

Sealed bytes: ``D5 01`` | key id (16 bytes) | nonce (12 bytes) | ciphertext+tag. The marker
differs from Avro single-object encoding (``C3 01``), so a reader can tell the two apart.
The associated data binds a ciphertext to its purpose (e.g. the citizen key and the topic),
so a sealed value cannot be moved to another citizen or context and still open.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from processors.frozen import quick_init
from sinks.nonces import random_bytes

__all__ = [
    "SEALED_MARKER",
    "CryptoError",
    "DataKey",
    "MasterKey",
    "cipher_for",
    "derive_key",
    "hkdf_sha256",
    "is_sealed",
    "open_sealed",
    "seal",
]

SEALED_MARKER = b"\xd5\x01"
_HEADER = len(SEALED_MARKER) + 16 + 12
_SECRET = 32  # AES-256


class CryptoError(RuntimeError):
    """A value cannot be opened: wrong key, destroyed key, or tampered bytes."""


@quick_init
@dataclass(frozen=True, slots=True)
class DataKey:
    key_id: bytes  # 16 random bytes, stored beside every ciphertext it made
    secret: bytes  # 32 bytes; never logged, never written unwrapped

    @classmethod
    def generate(cls) -> DataKey:
        return cls.generate_many(1)[0]

    @classmethod
    def generate_many(cls, count: int) -> list[DataKey]:
        """``count`` new keys, their secrets read from the kernel's CSPRNG in one call when they
        are made (``AESGCM.generate_key`` is that same read, one call per key). The door makes a
        key for each new citizen of a batch, and in the draining worker each ``getrandom(2)``
        cost far more than alone (sinks.nonces); only the key ids come from the nonce pool."""
        secrets = os.urandom(_SECRET * count)
        return [cls(random_bytes(16), secrets[at:at + _SECRET]) for at in range(0, _SECRET * count, _SECRET)]

    @property
    def cipher(self) -> AESGCM:
        return _cipher(self.secret)

    def __repr__(self) -> str:  # keys must not end up in logs through a repr
        return f"DataKey(key_id={self.key_id.hex()})"


def seal(key: DataKey, plaintext: bytes, aad: bytes) -> bytes:
    nonce = random_bytes(12)
    return SEALED_MARKER + key.key_id + nonce + key.cipher.encrypt(nonce, plaintext, aad)


def is_sealed(value: bytes | None) -> bool:
    return bool(value) and value[:2] == SEALED_MARKER  # type: ignore[index]


def sealed_key_id(value: bytes) -> bytes:
    if not is_sealed(value) or len(value) < _HEADER + 16:
        raise CryptoError("not a sealed value")
    return value[2:18]


def open_sealed(key: DataKey, value: bytes, aad: bytes) -> bytes:
    if sealed_key_id(value) != key.key_id:
        raise CryptoError("sealed with another key")
    nonce = value[18:30]
    try:
        return key.cipher.decrypt(nonce, value[_HEADER:], aad)
    except Exception as exc:  # InvalidTag: tampered, or wrong associated data
        raise CryptoError("sealed value does not open (tampered or wrong context)") from exc


# Making an AES-GCM context costs several times the sealing of a small value, and a step uses
# the same citizen's key several times; but a context takes ~2 KiB, so only the most recently
# made ones are kept (a million citizens' keys would need gigabytes).
CIPHER_CACHE_KEYS = 4096
# An OrderedDict: dropping the oldest of a plain dict (``next(iter(d))``) walks past every slot
# deleted before it, ~3 µs a new context at this size.
_ciphers: OrderedDict[bytes, AESGCM] = OrderedDict()


def cipher_for(secret: bytes) -> AESGCM:
    """An AES-GCM context for ``secret``, reused while it is among the most recently used."""
    return _cipher(secret)


def _cipher(secret: bytes) -> AESGCM:
    cipher = _ciphers.get(secret)
    if cipher is None:
        if len(_ciphers) >= CIPHER_CACHE_KEYS:
            _ciphers.popitem(last=False)  # the oldest made
        cipher = _ciphers[secret] = AESGCM(secret)
    return cipher


def derive_key(key: DataKey, purpose: str) -> DataKey:
    """A key for one purpose (e.g. one subscriber) from a citizen's key: shredding the citizen's
    key shreds every derived one, and one subscriber's key opens nothing of another's."""
    return _derived(key.secret, key.key_id, purpose)


@lru_cache(maxsize=CIPHER_CACHE_KEYS)
def _derived(secret: bytes, key_id: bytes, purpose: str) -> DataKey:
    return DataKey(hmac_sha256(key_id, purpose.encode())[:16], hkdf_sha256(secret, purpose.encode()))


_BLOCK = 64  # SHA-256's block size
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 HMAC-SHA256, the same bytes as ``hmac.digest(key, message, "sha256")`` (held
    equal by a test) in 40% of its time: that one looks the digest up by name in OpenSSL on
    every call, and a notification's key derivation makes three."""
    key = _padded(key)
    inner = hashlib.sha256(key.translate(_INNER))
    inner.update(message)
    return hashlib.sha256(key.translate(_OUTER) + inner.digest()).digest()


def _padded(key: bytes) -> bytes:
    """The key as HMAC uses it: hashed when longer than a block, then zero-filled to one."""
    return (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\x00")


class FixedKeyHmac:
    """HMAC-SHA256 under one key, its padded key hashed once: for a key used on every event
    (the pseudonym key, HKDF's empty salt). The same bytes as ``hmac_sha256``."""

    def __init__(self, key: bytes) -> None:
        key = _padded(key)
        self._inner = hashlib.sha256(key.translate(_INNER))
        self._outer = hashlib.sha256(key.translate(_OUTER))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_EXTRACT = FixedKeyHmac(bytes(32))  # HKDF with no salt: a zero key of the hash's length


def hkdf_sha256(secret: bytes, info: bytes) -> bytes:
    """RFC 5869 HKDF with SHA-256, no salt, 32 bytes out: the same bytes as ``cryptography``'s
    ``HKDF(SHA256(), 32, None, info).derive(secret)`` (held equal by a test), in two HMACs.
    Every notification of a citizen not seen since the worker started derives one key, and the
    library's object per derivation cost ten times these two calls."""
    prk = _EXTRACT(secret)  # extract
    return hmac_sha256(prk, info + b"\x01")  # expand: one block is all 32 bytes need


class MasterKey:
    """Wraps data keys for storage on the key topic. From ``DFDG_MASTER_KEY`` (64 hex chars) or
    ``DFDG_MASTER_KEY_FILE``; in dev mode a fixed, loudly logged development key."""

    DEV_KEY = hashlib.sha256(b"dfdg-dev-mode-master-key-NOT-FOR-PRODUCTION").digest()

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("the master key must be 32 bytes (64 hex characters)")
        self._aead = AESGCM(secret)

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    @classmethod
    def from_env(cls, dev_mode: bool) -> MasterKey:
        from sinks.config import ConfigError

        if value := os.environ.get("DFDG_MASTER_KEY"):
            return cls(bytes.fromhex(value.strip()))
        if path := os.environ.get("DFDG_MASTER_KEY_FILE"):
            return cls(bytes.fromhex(Path(path).read_text().strip()))
        if dev_mode:
            return cls(cls.DEV_KEY)
        raise ConfigError("no master key: set DFDG_MASTER_KEY (64 hex chars) or DFDG_MASTER_KEY_FILE "
                          "(or DFDG_DEV_MODE=1 for a local, non-secret development key)")

    def wrap(self, key: DataKey, aad: bytes) -> bytes:
        nonce = random_bytes(12)
        return key.key_id + nonce + self._aead.encrypt(nonce, key.secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> DataKey:
        try:
            return DataKey(wrapped[:16], self._aead.decrypt(wrapped[16:28], wrapped[28:], aad))
        except Exception as exc:
            raise CryptoError("a data key does not unwrap with this master key") from exc
