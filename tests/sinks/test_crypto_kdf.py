"""The key derivation written out in two HMACs must give exactly the bytes the ``cryptography``
library's HKDF gives: every derived key already handed to a subscriber, and every tombstone the
shredding writes for one, depends on it."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sinks.crypto import DataKey, derive_key, hkdf_sha256


def test_hkdf_in_two_hmacs_equals_the_library() -> None:
    for n in range(200):
        secret, info = os.urandom(32), f"notify|jobcenter:{n}".encode()
        expected = HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)
        assert hkdf_sha256(secret, info) == expected


def test_a_derived_key_depends_on_the_purpose_and_the_key() -> None:
    key, other = DataKey.generate(), DataKey.generate()
    assert derive_key(key, "notify|a").secret != derive_key(key, "notify|b").secret
    assert derive_key(key, "notify|a").secret != derive_key(other, "notify|a").secret
    assert derive_key(key, "notify|a") == derive_key(DataKey(key.key_id, key.secret), "notify|a")
