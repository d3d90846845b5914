"""The synthetic CPR generators give only numbers the pipeline's door accepts: a real birth date
under the century rule of the 7th digit (``processors.validation.cpr_birth_date``), in the
generator's birth range, and an adult (R1.5, E206 citizen-under-15) where the generator
promises adults. Pure: no broker."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from benchmarks import common as bench
from dfdg import scenario
from processors import reference as ref
from processors.validation import cpr_birth_date, is_valid_cpr, validate
from tests import synthetic

DRAWS = 50_000
FIRST_DAY, LAST_DAY = date(scenario.CPR_YEARS[0], 1, 1), date(scenario.CPR_YEARS[1], 12, 31)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _check(cprs: list[str], born_from: date, born_to: date) -> list[date]:
    """Every CPR is valid for the door and born in ``[born_from, born_to)``; returns the birth dates."""
    invalid = [c for c in cprs if not is_valid_cpr(c)]
    assert not invalid, f"{len(invalid)} invalid CPRs, e.g. {invalid[:3]}"
    born = [cpr_birth_date(c) for c in cprs]
    outside = [(c, b) for c, b in zip(cprs, born, strict=True) if not born_from <= b < born_to]
    assert not outside, f"{len(outside)} CPRs born outside the range (wrong century digit?), e.g. {outside[:3]}"
    return born


def test_every_day_the_cpr_can_encode_comes_back_as_that_day() -> None:
    # One draw per day, 1858-01-01 to 2057-12-31: leap days (1896, 2000, 2036, 2048 ...) and each
    # century switch of the 7th digit (1899/1900, 1936/1937, 1999/2000, 2036/2037, 2057) included.
    rng = random.Random("every-day")
    day, wrong = FIRST_DAY, []
    while day <= LAST_DAY:
        cpr = scenario.synthetic_cpr(rng, day, day + timedelta(days=1))
        if not is_valid_cpr(cpr) or cpr_birth_date(cpr) != day:
            wrong.append((day, cpr))
        day += timedelta(days=1)
    assert not wrong, f"{len(wrong)} days not given back, e.g. {wrong[:3]}"


@pytest.mark.parametrize("seed", [0, 1, 2026])
def test_random_draws_over_the_whole_encodable_range_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    end = LAST_DAY + timedelta(days=1)
    cprs = [scenario.synthetic_cpr(rng, FIRST_DAY, end) for _ in range(DRAWS)]
    born = _check(cprs, FIRST_DAY, end)
    assert min(born).year == FIRST_DAY.year and max(born).year == LAST_DAY.year  # the range is really covered
    assert {c[6] for c in cprs} == set("0123456789")  # every century digit is used


@pytest.mark.parametrize(("name", "generate", "born_from", "born_to", "adult_on"), [
    # The benchmarks' CaseCreated batches are created now, without the minors' flag.
    pytest.param("benchmarks", bench.synthetic_cpr, bench.BORN_FROM, bench.BORN_TO, date.today(), id="benchmarks"),
    # The integration tests' citizens, likewise created now.
    pytest.param("tests", synthetic.synthetic_cpr, synthetic.BORN_FROM, synthetic.BORN_TO, date.today(), id="tests"),
    # The demo scenario's citizens: adults from its first day.
    pytest.param("scenario", scenario.synthetic_cpr, date(1960, 1, 1), date(2004, 12, 31),
                 scenario.DEFAULT_START.date(), id="scenario"),
])
@pytest.mark.parametrize("seed", [7, 8])
def test_each_generator_gives_valid_adults_over_its_range(
        name: str, generate: Callable[[random.Random], str], born_from: date, born_to: date, adult_on: date,
        seed: int) -> None:
    rng = random.Random(f"{name}-{seed}")
    cprs = [generate(rng) for _ in range(DRAWS)]
    born = _check(cprs, born_from, born_to)
    minors = [b for b in born if _age(b, adult_on) < ref.MINIMUM_AGE]
    assert not minors, f"{len(minors)} {name} citizens under {ref.MINIMUM_AGE} on {adult_on}, e.g. {minors[:3]}"
    # Births after 1999 are in the range, so the 2000s century digits must have been needed.
    assert max(born) >= date(2000, 1, 1) and any(c[6] in "49" for c in cprs)


def test_the_benchmark_batch_passes_the_door() -> None:
    today = date.today()
    batch = bench.case_created_batch(2_000, "door-check")
    refused = [found for _, event in batch if (found := validate(event, today))]  # type: ignore[arg-type]
    assert len(batch) == 2_000 and not refused, f"{len(refused)} refused, e.g. {refused[:2]}"


def test_the_demo_scenario_passes_the_door_except_its_bad_on_purpose_events() -> None:
    built = scenario.build_scenario()
    assert len(set(built.cprs)) == len(built.cprs) and all(is_valid_cpr(c) for c in built.cprs)
    refused = []
    for step in built.steps:
        if step.event is None or step.bypass_check:
            continue
        assert isinstance(step.at, datetime)
        found = validate(step.event, step.at.astimezone(scenario.LOCAL).date())
        if found:
            refused.append((step.label, found))
    assert not refused, f"{len(refused)} refused, e.g. {refused[:2]}"


@pytest.mark.parametrize(("born_from", "born_to"), [
    (date(1857, 12, 31), date(1858, 1, 2)),   # starts before the 1858 a CPR can encode
    (date(2057, 12, 31), date(2058, 1, 2)),   # ends after 2057
    (date(1990, 1, 1), date(1990, 1, 1)),     # empty
    (date(1990, 1, 2), date(1990, 1, 1)),     # backwards
])
def test_a_range_the_cpr_cannot_encode_is_refused(born_from: date, born_to: date) -> None:
    with pytest.raises(ValueError, match="birth range"):
        scenario.synthetic_cpr(random.Random(0), born_from, born_to)


def test_the_whole_encodable_range_is_accepted_to_its_last_day() -> None:
    cpr = scenario.synthetic_cpr(random.Random(0), LAST_DAY, LAST_DAY + timedelta(days=1))
    assert cpr_birth_date(cpr) == LAST_DAY
