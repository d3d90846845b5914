"""The drain benchmark's worker / baseline ratio: the median pair's, each pair shown."""

from __future__ import annotations

from benchmarks.drain_bench import Drain, Pair, _median_pair, _pair_figures


def _pair(worker_rate: float, baseline_rate: float, worker_cpu: float = 500.0, baseline_cpu: float = 3000.0) -> Pair:
    return Pair(Drain(100, worker_rate, cpu_us=worker_cpu), Drain(100, baseline_rate, cpu_us=baseline_cpu))


def test_the_ratio_is_the_median_pairs_and_each_pair_is_shown() -> None:
    pairs = [_pair(2000, 500), _pair(2400, 400), _pair(2200, 400, worker_cpu=600)]
    ratio, cpu = _pair_figures(pairs)
    assert ratio.metric == "ratio worker/baseline" and ratio.value == 5.5 and ratio.target == ">= 5"
    assert ratio.note == "the median of 3 alternating pairs: 4.00, 6.00, 5.50; 2 at or above 5"
    assert cpu.value == 6.0 and cpu.note == "the median of 3 pairs: 6.00, 6.00, 5.00"
    assert _pair_figures([]) == []


def test_of_an_even_number_of_pairs_the_lower_middle_one_and_its_own_drains() -> None:
    pairs = [_pair(2000, 400), _pair(2000, 500), _pair(3000, 500), _pair(2100, 500, baseline_cpu=2000)]
    middle = _median_pair(pairs)
    assert middle is pairs[3]  # ratios 5.0, 4.0, 6.0, 4.2: the lower middle is 4.2
    assert _pair_figures(pairs)[0].value == middle.rate_ratio
    assert _pair_figures(pairs)[1].value == 6.0  # CPU ratios 6, 6, 6, 4: the lower middle
