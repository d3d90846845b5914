"""The drain benchmark's worker / baseline ratio: the median of alternating pairs, each shown."""

from __future__ import annotations

from benchmarks.drain_bench import Drain, Pair, _median_drain, _pair_figures


def _pair(worker_rate: float, baseline_rate: float, worker_cpu: float = 500.0, baseline_cpu: float = 3000.0) -> Pair:
    return Pair(Drain(100, worker_rate, cpu_us=worker_cpu), Drain(100, baseline_rate, cpu_us=baseline_cpu))


def test_the_ratio_is_the_median_of_the_pairs_and_each_pair_is_shown() -> None:
    pairs = [_pair(2000, 500), _pair(2400, 400), _pair(2200, 400, worker_cpu=600)]
    ratio, cpu = _pair_figures(pairs)
    assert ratio.metric == "ratio worker/baseline" and ratio.value == 5.5 and ratio.target == ">= 5"
    assert ratio.note == "median of 3 alternating pairs: 4.00, 6.00, 5.50; 2 at or above 5"
    assert cpu.value == 6.0 and cpu.note == "median of 3 pairs: 6.00, 6.00, 5.00"
    assert _pair_figures([]) == []


def test_the_median_drain_is_one_that_happened() -> None:
    drains = [Drain(100, rate, cpu_us=rate) for rate in (3.0, 1.0, 2.0, 4.0)]
    assert _median_drain(drains) is drains[2]  # of an even number, the slower middle one
    assert _median_drain(drains[:3]) is drains[2]
