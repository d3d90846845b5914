"""Two tests never share a citizen by chance: the same generator state drawn from twice in one
session gives two different CPR numbers (tests/synthetic.py says why)."""

from __future__ import annotations

import random

from dfdg.scenario import synthetic_cpr as any_cpr
from tests.synthetic import BORN_FROM, BORN_TO, synthetic_cpr


def test_the_same_seed_twice_gives_two_citizens() -> None:
    first = synthetic_cpr(random.Random("same-seed"))
    second = synthetic_cpr(random.Random("same-seed"))
    assert first != second
    assert first == any_cpr(random.Random("same-seed"), BORN_FROM, BORN_TO)  # the first draw is the generator's own
