"""Synthetic citizens: valid CPR numbers that belong to no one (sequence numbers from a random
generator, dates from a range), never real data. The generator is ``dfdg.scenario.synthetic_cpr``;
this keeps the tests' birth range (1950-2005: adults, at least 15, on any date from 2021) and
never gives the same number twice in one test session.

Why never twice: the tests share one broker and its output topics, and a CPR is one citizen key
for every app (the development pseudonym key). Two tests that drew the same number would each
read the other's outputs for that citizen as their own. A kill test once failed with "9 outputs
with ids nothing owed": one citizen's nine outputs, written by an earlier test's worker."""

from __future__ import annotations

import random
from datetime import date

from dfdg import scenario

BORN_FROM = date(1950, 1, 1)
BORN_TO = date(2005, 12, 31)  # excluded

_DRAWN: set[str] = set()


def synthetic_cpr(rng: random.Random, born_from: date = BORN_FROM, born_to: date = BORN_TO) -> str:
    """A valid CPR number born in ``[born_from, born_to)`` and not drawn before in this session
    (``rng`` is drawn from again on a repeat); see ``dfdg.scenario.synthetic_cpr``."""
    while True:
        cpr = scenario.synthetic_cpr(rng, born_from, born_to)
        if cpr not in _DRAWN:
            _DRAWN.add(cpr)
            return cpr
