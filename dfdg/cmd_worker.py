"""``dfdg worker``: run the stream processors (Faust) until stopped."""

from __future__ import annotations

import argparse
import os

from streams.settings import ROLES


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="run the pipeline's worker")
    p.add_argument("--now", default=None,
                   help="run in shifted time: an instant (2026-03-01T00:00, Copenhagen time) or an offset (+120d)")
    p.add_argument("--clock-speed", type=float, default=None,
                   help="shifted time runs this many times faster than real time (demos)")
    p.add_argument("--role", choices=ROLES, default=None,
                   help="all: both steps in this process (default); door or steps: one of them, with the other "
                        "in a second process (DFDG_ROLE)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.now is not None:
        os.environ["DFDG_NOW"] = args.now
    if args.role is not None:
        os.environ["DFDG_ROLE"] = args.role
    if args.clock_speed is not None:
        os.environ["DFDG_CLOCK_SPEED"] = str(args.clock_speed)
    from dfdg.runworker import run_worker

    return run_worker(args.log_level.upper())

