"""A key topic that cannot be read in time is no answer about a dead letter's citizen: ``show``
says so instead of "shredded", and ``replay`` stops at that letter with exit 75 instead of
skipping it (or ending in a traceback halfway), so running it again replays the rest."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from dfdg.cmd_dead_letters import EX_TEMPFAIL, _replay
from dfdg.dead_letter_view import Letter, opened_view
from streams.keystore import KeysUnavailable


class _Unreadable:
    """An opener whose key topic did not answer in time (``KeyTopic.key_by_id``'s timeout)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def opened(self, letter: Letter) -> Any:
        self.asked.append(letter.offset)
        raise KeysUnavailable("the key topic was not read to its end within 30 s")


def _letter(offset: int) -> Letter:
    return Letter(offset, b"k", b"sealed", [("dlq.topic", b"dfdg.case-created"), ("dlq.sealed-for", b"c" * 32),
                                            ("dlq.error.code", b"E901")])


async def test_show_says_not_opened_and_not_shredded() -> None:
    view = await opened_view(_Unreadable(), _letter(3))  # type: ignore[arg-type]
    assert "not opened" in view["value"] and "shredded" not in view["value"]


@pytest.mark.kafka
async def test_replay_stops_at_the_letter_it_cannot_open_with_exit_75(bootstrap: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    opener = _Unreadable()
    args = argparse.Namespace(all=True, offset=[], code=None, bootstrap=bootstrap)
    assert await _replay(args, [_letter(0), _letter(1), _letter(2)], opener) == EX_TEMPFAIL  # type: ignore[arg-type]
    assert opener.asked == [0]  # not skipped on to the next one
    out = capsys.readouterr().out
    assert "dead letter 0: not replayed" in out and "the 2 after it were left" in out
    assert "replayed 0 dead letter(s)" in out
