"""Synthetic citizens: valid-looking CPR numbers that belong to no one (sequence numbers from
a random generator, dates from a range), never real data."""

from __future__ import annotations

import random
from datetime import date, timedelta


def synthetic_cpr(rng: random.Random, born_from: date = date(1950, 1, 1), born_to: date = date(2005, 12, 31)) -> str:
    born = born_from + timedelta(days=rng.randrange((born_to - born_from).days))
    yy = born.year % 100
    if born.year < 2000:
        seventh = rng.choice([0, 1, 2, 3])
    elif yy <= 36:
        seventh = rng.choice([4, 9])
    else:
        seventh = rng.choice([5, 6, 7, 8])
    return f"{born:%d%m}{yy:02d}{seventh}{rng.randrange(1000):03d}"
