"""The key derivation written out in two HMACs must give exactly the bytes the ``cryptography``
library's HKDF gives: every derived key already handed to a subscriber, and every tombstone the
shredding writes for one, depends on it."""

from __future__ import annotations

import hmac
import os

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sinks.crypto import DataKey, FixedKeyHmac, derive_key, hkdf_sha256, hmac_sha256


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


def test_hmac_written_out_equals_the_standard_library_for_every_key_length() -> None:
    # Key ids (16 bytes), secrets (32), a block exactly (64), longer keys (hashed first), none.
    for length in (0, 1, 16, 32, 63, 64, 65, 100, 200):
        key = os.urandom(length)
        fixed = FixedKeyHmac(key)
        for message in (b"", b"notify|jobcenter:851", os.urandom(300)):
            expected = hmac.digest(key, message, "sha256")
            assert hmac_sha256(key, message) == expected
            assert fixed(message) == expected
            assert fixed(message) == expected  # its hashed pads are copied, never used up


def test_a_key_id_derived_before_stays_the_same() -> None:
    """A derived key's id and secret are pinned: tombstones for keys already handed out name them."""
    key = DataKey(bytes(range(16)), bytes(range(32)))
    derived = derive_key(key, "notify|jobcenter:851")
    assert derived.key_id == hmac.digest(key.key_id, b"notify|jobcenter:851", "sha256")[:16]
    assert derived.secret == HKDF(algorithm=SHA256(), length=32, salt=None,
                                  info=b"notify|jobcenter:851").derive(key.secret)


def test_the_pseudonymous_citizen_key_is_the_hmac_of_the_cpr_as_before() -> None:
    """Every row, key and message of a citizen is under this key: it must never change."""
    from streams.pseudonym import citizen_key

    secret = bytes(range(32))
    for cpr in ("0101709999", "3112889996"):  # synthetic
        assert citizen_key(secret, cpr) == hmac.digest(secret, cpr.encode(), "sha256").hex()[:32]
    assert citizen_key(b"another secret", "0101709999") != citizen_key(secret, "0101709999")
