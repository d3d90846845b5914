"""Configuration from the environment, read once at start-up. Same names in the code,
the README's table and docker-compose.yml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from processors.archive_retry import DEFAULT_RETRY_POLICY, RetryPolicy
from sinks.config import ConfigError, dev_mode
from streams.store_policy import DEFAULT_KEY_CACHE_CITIZENS, DEFAULT_ROCKSDB_MEMORY_MB, MIN_PARTITION_SHARE_MB

__all__ = ["ROLES", "ConfigError", "Settings", "dev_mode"]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    bootstrap: str
    app_id: str
    partitions: int
    web_port: int
    web_host: str
    data_dir: Path
    store: str
    dev_mode: bool
    pseudonym_key: bytes
    archive_inbox: Path
    subscribers_file: Path
    clock: str  # "" (real time), an ISO instant to start from, or an offset like "+120d"
    clock_speed: float
    # How long the publishers' ingress topics keep events, CPR in clear (docs/security.md).
    ingress_retention_days: int = 7
    # The backoff after a failed archive delivery; another than the default only in tests (dev mode).
    archive_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    # What the RocksDB stores may take in all (streams.store_policy).
    rocksdb_memory_mb: int = DEFAULT_ROCKSDB_MEMORY_MB
    # How many citizens' data keys are kept opened (streams.store_policy); the rest stay wrapped.
    key_cache_citizens: int = DEFAULT_KEY_CACHE_CITIZENS
    # Standby copies of each table partition on other workers (docs/operations.md, "Recovery").
    standby_replicas: int = 0
    # Which steps this process runs (ROLES): both, or one of them in a process of its own.
    role: str = "all"

    @classmethod
    def from_env(cls) -> Settings:
        dev = dev_mode()
        home = Path(_env("DFDG_HOME", str(Path.home() / ".cache" / "dfdg")))
        partitions = int(_env("DFDG_PARTITIONS", "4"))
        return cls(
            bootstrap=_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            app_id=_env("DFDG_APP_ID", "dfdg"),
            partitions=partitions,
            web_port=int(_env("DFDG_WEB_PORT", "6066")),
            web_host=_env("DFDG_WEB_HOST", "127.0.0.1"),
            data_dir=Path(_env("DFDG_DATA_DIR", str(home / "worker-data"))),
            store=_env("DFDG_STORE", "rocksdb://"),
            dev_mode=dev,
            pseudonym_key=_pseudonym_key(dev),
            archive_inbox=Path(_env("DFDG_ARCHIVE_INBOX", str(home / "archive-inbox"))),
            subscribers_file=Path(_env("DFDG_SUBSCRIBERS_FILE", str(Path(__file__).parent.parent / "config"
                                                                    / "subscribers.json"))),
            clock=_env("DFDG_NOW", ""),
            clock_speed=float(_env("DFDG_CLOCK_SPEED", "1")),
            ingress_retention_days=_retention_days(_env("DFDG_INGRESS_RETENTION_DAYS", "7")),
            archive_retry=_archive_retry(dev),
            rocksdb_memory_mb=_rocksdb_memory_mb(_env("DFDG_ROCKSDB_MEMORY_MB", str(DEFAULT_ROCKSDB_MEMORY_MB)),
                                                 partitions),
            role=_role(_env("DFDG_ROLE", "all")),
            key_cache_citizens=_key_cache_citizens(_env("DFDG_KEY_CACHE_CITIZENS", str(DEFAULT_KEY_CACHE_CITIZENS))),
            standby_replicas=_standby_replicas(_env("DFDG_STANDBY_REPLICAS", "0")),
        )

    @property
    def key_shelf_dir(self) -> Path:
        """The worker's copy of its key topic (streams.key_shelf), one per role: a door and the
        steps may share a data directory."""
        return self.data_dir / f"data-keys-{self.role}"


# "all": the door and the citizen step in one process (the default, and what a small deployment
# runs). "door" and "steps": the same two steps in two processes, so each has a core of its own;
# the door keeps no state and reads in its own consumer group, so nothing else changes.
ROLES = ("all", "door", "steps")


def _role(value: str) -> str:
    if value not in ROLES:
        raise ConfigError(f"DFDG_ROLE must be one of {', '.join(ROLES)}, not {value!r}")
    return value


def _standby_replicas(value: str) -> int:
    """0 (the default: a failover restores from the changelog, in bulk) to 2: each standby is a
    whole copy of the table on another worker, kept up to date with its CPU."""
    if value not in ("0", "1", "2"):
        raise ConfigError(f"DFDG_STANDBY_REPLICAS must be 0, 1 or 2, not {value!r}")
    return int(value)


def _key_cache_citizens(value: str) -> int:
    return _at_least("DFDG_KEY_CACHE_CITIZENS", value, 1, "citizens")


def _at_least(name: str, value: str, least: int, unit: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise ConfigError(f"{name} must be a whole number of {unit}, at least {least}, not {value!r}")
    return number


def _rocksdb_memory_mb(value: str, partitions: int) -> int:
    """The RocksDB budget, at least 32 MiB and at least MIN_PARTITION_SHARE_MB for each of the
    table's DFDG_PARTITIONS partitions: below that each partition's floors (streams.store_policy)
    would take more than its share, and the stores more than the budget."""
    megabytes = _at_least("DFDG_ROCKSDB_MEMORY_MB", value, 32, "MiB")
    needed = MIN_PARTITION_SHARE_MB * partitions
    if megabytes < needed:
        raise ConfigError(
            f"DFDG_ROCKSDB_MEMORY_MB={megabytes} is below {MIN_PARTITION_SHARE_MB} MiB x DFDG_PARTITIONS={partitions}"
            f" = {needed} MiB: each partition's RocksDB needs at least {MIN_PARTITION_SHARE_MB} MiB, so the stores"
            f" would take {needed} MiB; raise DFDG_ROCKSDB_MEMORY_MB to {needed} or lower DFDG_PARTITIONS")
    return megabytes


def _retention_days(value: str) -> int:
    """At least a day (the worker reads within seconds, but an outage must not lose events); at
    most 7, the longest a deleted citizen's events may stay in clear (docs/security.md)."""
    try:
        days = int(value)
    except ValueError:
        days = 0
    if not 1 <= days <= 7:
        raise ConfigError(f"DFDG_INGRESS_RETENTION_DAYS must be a whole number of days from 1 to 7, not {value!r}")
    return days


_RETRY_FIRST = "DFDG_ARCHIVE_RETRY_FIRST_SECONDS"
_RETRY_CAP = "DFDG_ARCHIVE_RETRY_CAP_SECONDS"


def _archive_retry(dev_mode: bool) -> RetryPolicy:
    """The archive delivery backoff. For tests only: they watch a failed delivery be retried within
    seconds instead of the 30 s the policy starts with. A deployment keeps the policy's named
    assumptions (processors.archive_retry), so outside dev mode setting either is refused."""
    first, cap = os.environ.get(_RETRY_FIRST, ""), os.environ.get(_RETRY_CAP, "")
    if not first and not cap:
        return DEFAULT_RETRY_POLICY
    if not dev_mode:
        raise ConfigError(f"{_RETRY_FIRST} and {_RETRY_CAP} are for tests (DFDG_DEV_MODE=1); a deployment "
                          "uses the backoff in processors/archive_retry.py")
    try:
        return RetryPolicy(first=timedelta(seconds=float(first)) if first else DEFAULT_RETRY_POLICY.first,
                           cap=timedelta(seconds=float(cap)) if cap else DEFAULT_RETRY_POLICY.cap)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{_RETRY_FIRST}={first!r}, {_RETRY_CAP}={cap!r}: {exc}") from exc


# Loud on purpose: anyone who sees this in a log knows pseudonyms are not secret.
DEV_PSEUDONYM_KEY = b"dfdg-dev-mode-pseudonym-key-NOT-FOR-PRODUCTION"


def _pseudonym_key(dev_mode: bool) -> bytes:
    """The HMAC key that turns a CPR into the citizen key. Without one the worker refuses to
    start, unless DFDG_DEV_MODE is set, because a guessable key makes pseudonyms reversible
    (there are only ~10^9 CPR numbers to try)."""
    if value := os.environ.get("DFDG_PSEUDONYM_KEY"):
        return value.encode()
    if path := os.environ.get("DFDG_PSEUDONYM_KEY_FILE"):
        try:
            return Path(path).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"DFDG_PSEUDONYM_KEY_FILE cannot be read: {exc.strerror}") from exc
    if dev_mode:
        return DEV_PSEUDONYM_KEY
    raise ConfigError("no pseudonym key: set DFDG_PSEUDONYM_KEY or DFDG_PSEUDONYM_KEY_FILE "
                      "(or DFDG_DEV_MODE=1 for a local, non-secret development key)")
