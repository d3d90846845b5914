"""Synthetic citizens: valid CPR numbers that belong to no one (sequence numbers from a random
generator, dates from a range), never real data. The generator is ``dfdg.scenario.synthetic_cpr``;
this only keeps the tests' birth range (1950-2005: adults, at least 15, on any date from 2021)."""

from __future__ import annotations

import random
from datetime import date

from dfdg import scenario

BORN_FROM = date(1950, 1, 1)
BORN_TO = date(2005, 12, 31)  # excluded


def synthetic_cpr(rng: random.Random, born_from: date = BORN_FROM, born_to: date = BORN_TO) -> str:
    """A valid CPR number born in ``[born_from, born_to)``; see ``dfdg.scenario.synthetic_cpr``."""
    return scenario.synthetic_cpr(rng, born_from, born_to)
