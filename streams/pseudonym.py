"""The pseudonymous citizen key: HMAC-SHA256 of the CPR under a secret key.

It is the key of every internal message, table row and subscriber message, so one
citizen's events stay in order on one partition while no CPR is ever a key."""

from __future__ import annotations

from functools import lru_cache

from sinks.crypto import FixedKeyHmac

__all__ = ["citizen_key"]


def citizen_key(secret: bytes, cpr: str) -> str:
    # 32 hex chars (128 bits) is collision-free at national scale and keeps keys short.
    return _keyed(secret)(cpr.encode()).hex()[:32]


@lru_cache(maxsize=8)
def _keyed(secret: bytes) -> FixedKeyHmac:
    # One secret per worker (two while the key is rotated): its padded key is hashed once.
    return FixedKeyHmac(secret)
