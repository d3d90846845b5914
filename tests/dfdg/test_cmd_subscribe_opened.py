"""What ``dfdg subscribe`` prints for a notification's personal part it cannot open: a deleted
citizen, and a key topic that could not be read in time, are told apart (the second is no
answer about the citizen; a person tries again)."""

from __future__ import annotations

from typing import Any

from dfdg.cmd_subscribe import _opened
from streams.keystore import KeysUnavailable, UnknownKey


class _Keys:
    def __init__(self, error: Exception) -> None:
        self._error = error

    async def personal(self, notification: Any, wait_s: float = 5.0) -> dict[str, str] | None:
        raise self._error


async def test_a_deleted_citizen_and_an_unreadable_key_topic_print_differently() -> None:
    gone = await _opened(_Keys(UnknownKey("shredded")), object())  # type: ignore[arg-type]
    slow = await _opened(_Keys(KeysUnavailable("timeout")), object())  # type: ignore[arg-type]
    assert gone == "<shredded: the citizen has been deleted>"
    assert slow == "<not opened: the key topic could not be read in time; try again>"
