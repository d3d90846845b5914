"""What every part shares about settings: the error for a missing or wrong one, and dev mode
(the settings themselves live in ``streams.settings``; sinks read the few they need here)."""

from __future__ import annotations

import os

__all__ = ["ConfigError", "dev_mode"]


def dev_mode() -> bool:
    """DFDG_DEV_MODE: development keys allowed (the one place that reads it)."""
    return os.environ.get("DFDG_DEV_MODE", "").strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the variable."""
