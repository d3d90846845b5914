"""Webhook delivery policy and signing, free of I/O except ``resolve_secret``.

Signing follows Standard Webhooks (https://www.standardwebhooks.com): the signed content is
``"<webhook-id>.<webhook-timestamp>.<body>"``, HMAC-SHA256 with the base64-decoded part of a
``whsec_<base64>`` secret, sent as ``webhook-signature: v1,<base64 digest>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from pathlib import Path

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "RetryPolicy",
    "Verdict",
    "classify",
    "decode_secret",
    "parse_retry_after",
    "resolve_secret",
    "sign",
]

MAX_BACKOFF_SECONDS = 3 * 3600.0


class Verdict(Enum):
    """What one HTTP answer means for the message."""

    DELIVERED = "delivered"
    RETRY = "retry"  # transient: 408, 425, 429, 5xx, network errors
    GONE = "gone"  # 410: the endpoint is gone; disable it
    REFUSED = "refused"  # any other answer (4xx, 3xx): retrying would not help


def classify(status: int) -> Verdict:
    """Map an HTTP status to a verdict (redirects are not followed: a moved endpoint is refused)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status in (408, 425, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.REFUSED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff ``base * 2**(n-1)`` plus up to ``jitter`` of it, capped at
    ``max_delay``; give up after ``max_attempts`` or once the first attempt is ``max_age`` old.
    Defaults retry for about three days; tests shrink ``base_delay`` to milliseconds."""

    base_delay: float = 5.0
    max_delay: float = MAX_BACKOFF_SECONDS
    jitter: float = 0.2
    max_attempts: int = 30
    max_age: float = 72 * 3600.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 60))
        return min(self.max_delay, delay + rng.uniform(0.0, delay * self.jitter))

    def gives_up(self, attempts: int, age_seconds: float) -> bool:
        return attempts >= self.max_attempts or age_seconds >= self.max_age

    def honour(self, retry_after: float) -> float:
        """A server's ``Retry-After``, kept within ``[0, max_delay]``."""
        return max(0.0, min(self.max_delay, retry_after))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret (the prefix is optional)."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret is not whsec_<base64>") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, to_sign, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode('ascii')}"


def resolve_secret(ref: str) -> str:
    """Read a secret named by a registry ref: ``env:VAR`` or ``file:/path``."""
    scheme, _, where = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(where)
        if not value:
            raise LookupError(f"webhook secret env var {where} is not set")
        return value.strip()
    if scheme == "file":
        return Path(where).read_text(encoding="utf-8").strip()
    raise ValueError("secret ref must be env:VAR or file:/path")
