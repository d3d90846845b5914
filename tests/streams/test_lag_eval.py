"""Burrow's evaluation rules, one status at a time, over explicit observation windows."""

from __future__ import annotations

from streams.lag_eval import Observation, Status, evaluate, worst


def _win(*rows: tuple[float, int, int], commits: bool = False) -> list[Observation]:
    return [Observation(ts, c, e, ts if commits else None) for ts, c, e in rows]


def test_empty_window_is_err() -> None:
    assert evaluate([]) is Status.ERR


def test_committed_beyond_log_end_is_err() -> None:
    assert evaluate(_win((0, 5, 10), (10, 12, 11))) is Status.ERR


def test_idle_group_without_lag_is_ok_even_without_commits() -> None:
    # No members, no commits for ages, nothing to read: healthy, not STOP.
    assert evaluate(_win((0, 50, 50), (60, 50, 50), (120, 50, 50))) is Status.OK


def test_any_zero_lag_in_window_is_ok() -> None:
    assert evaluate(_win((0, 10, 10), (10, 10, 20), (20, 10, 30))) is Status.OK


def test_single_lagging_observation_is_ok_until_the_window_says_otherwise() -> None:
    assert evaluate(_win((0, 10, 20))) is Status.OK


def test_lag_growing_while_moving_is_warn() -> None:
    assert evaluate(_win((0, 10, 20), (10, 15, 30), (20, 20, 40), commits=True)) is Status.WARN


def test_lag_shrinking_is_ok() -> None:
    assert evaluate(_win((0, 10, 40), (10, 20, 40), (20, 30, 41), commits=True)) is Status.OK


def test_lag_flat_while_moving_is_ok() -> None:
    assert evaluate(_win((0, 10, 20), (10, 20, 30), (20, 30, 40), commits=True)) is Status.OK


def test_committing_same_offset_while_lagging_is_stall() -> None:
    assert evaluate(_win((0, 10, 20), (10, 10, 25), (20, 10, 30), commits=True)) is Status.STALL


def test_no_commit_for_the_window_while_lagging_is_stop() -> None:
    assert evaluate(_win((0, 10, 20), (10, 10, 20), (20, 10, 20))) is Status.STOP


def test_explicit_old_commit_time_is_stop() -> None:
    window = [Observation(100, 10, 20, 50), Observation(110, 10, 20, 50), Observation(120, 10, 20, 50)]
    assert evaluate(window) is Status.STOP


def test_commit_inside_the_window_is_not_stop() -> None:
    # Offset moved at t=10 (no explicit commit times): the group committed within the window.
    assert evaluate(_win((0, 5, 20), (10, 10, 20), (20, 10, 20))) is not Status.STOP


def test_offset_going_backwards_is_rewind() -> None:
    assert evaluate(_win((0, 50, 60), (10, 20, 60), (20, 25, 60), commits=True)) is Status.REWIND


def test_rewind_worked_off_is_no_longer_rewind() -> None:
    assert evaluate(_win((0, 50, 60), (10, 20, 60), (20, 60, 60), commits=True)) is Status.OK


def test_group_takes_the_worst_status() -> None:
    assert worst([Status.OK, Status.WARN, Status.STOP, Status.STALL]) is Status.STOP
    assert worst([Status.OK, Status.ERR, Status.REWIND]) is Status.ERR
    assert worst([]) is Status.OK
