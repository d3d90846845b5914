"""The pseudonymous citizen key: HMAC-SHA256 of the CPR under a secret key.

It is the key of every internal message, table row and subscriber message, so one
citizen's events stay in order on one partition while no CPR is ever a key."""

from __future__ import annotations

import hmac

__all__ = ["citizen_key"]


def citizen_key(secret: bytes, cpr: str) -> str:
    # 32 hex chars (128 bits) is collision-free at national scale and keeps keys short.
    return hmac.digest(secret, cpr.encode(), "sha256").hex()[:32]
