"""``dfdg demo``: run the pipeline on the bundled scenario and print what happened (``make run``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the pipeline on a bundled synthetic scenario and print a summary")
    p.add_argument("--citizens", type=int, default=300, help="synthetic citizens in the scenario (default 300)")
    p.add_argument("--days", type=int, default=120, help="days of shifted time the scenario spans (default 120)")
    p.add_argument("--seconds", type=float, default=60.0, help="wall-clock seconds to run them in (default 60)")
    p.add_argument("--seed", type=int, default=2026, help="scenario seed: the same seed gives the same events")
    p.add_argument("--keep-running", action="store_true", help="leave the worker running after the summary "
                   "is ready, until Ctrl-C")
    p.add_argument("--write-scenario", type=Path, metavar="FILE",
                   help="only write the scenario as JSON lines to FILE and exit")
    p.add_argument("--summary-json", type=Path, metavar="FILE", help="also write the summary as JSON to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.citizens < 1 or args.days < 1 or args.seconds <= 0:
        print("dfdg demo: --citizens, --days and --seconds must be positive")
        return 2
    if args.write_scenario is not None:
        from dfdg.scenario import build_scenario, write_scenario

        lines = write_scenario(build_scenario(args.citizens, args.days, args.seed), args.write_scenario)
        print(f"wrote {lines} scenario events to {args.write_scenario}")
        return 0
    from dfdg.demo import DemoOptions, run_demo

    return run_demo(DemoOptions(args.citizens, args.days, args.seconds, args.seed, args.keep_running,
                                args.summary_json))
