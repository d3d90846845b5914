"""Benchmarks for dfdg-stream: ``python -m benchmarks`` (or ``make bench``).

One module per benchmark; each exposes ``run(ctx) -> list[Figure]``. The runner prints a
table and writes the same figures as JSON under ``benchmarks/results/`` (git-ignored).
Figures are reported, never asserted: targets are printed beside them.
"""
