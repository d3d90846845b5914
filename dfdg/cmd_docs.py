"""``dfdg docs events``: print docs/events.md, generated from the schemas."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("docs", help="generate documentation from the schemas")
    p.add_argument("what", choices=["events"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from schemas.docs import render_events_markdown

    print(render_events_markdown(), end="")
    return 0
