"""Load and save the subscriber registry file (``config/subscribers.json``).

The path is ``$DFDG_SUBSCRIBERS_FILE`` when set, else ``config/subscribers.json`` in the
repository. Writes are atomic (temp file in the same directory, fsync, rename), and ``update``
holds an advisory lock so the CLI and a webhook dispatcher disabling an endpoint cannot lose
each other's change.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from processors.subscribers import Registry

__all__ = ["DEFAULT_PATH", "ENV_VAR", "load", "registry_path", "save", "update"]

ENV_VAR = "DFDG_SUBSCRIBERS_FILE"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "subscribers.json"


def registry_path(path: Path | str | None = None) -> Path:
    """The registry file: ``path`` if given, else ``$DFDG_SUBSCRIBERS_FILE``, else the default."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: Path | str | None = None) -> Registry:
    """Read the registry; a missing file is an empty registry."""
    p = registry_path(path)
    if not p.exists():
        return Registry()
    return Registry.from_json(json.loads(p.read_text(encoding="utf-8")))


def save(registry: Registry, path: Path | str | None = None) -> Path:
    """Write the registry atomically: readers see the old file or the new one, never half."""
    p = registry_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(registry.to_json(), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        # mkstemp makes 0600; the registry holds no secrets, so keep the file's mode (or 0644).
        os.chmod(tmp, p.stat().st_mode & 0o777 if p.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    return p


@contextmanager
def _locked(p: Path) -> Iterator[None]:
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def update(change: Callable[[Registry], Registry], path: Path | str | None = None) -> Registry:
    """Load, apply ``change`` and save under an exclusive lock; returns the saved registry."""
    p = registry_path(path)
    with _locked(p):
        new = change(load(p))
        save(new, p)
    return new
