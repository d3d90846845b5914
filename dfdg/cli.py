"""``dfdg``: one command line for the pipeline, its local broker and its users' tools."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Modules that add their own subcommands through ``register(subparsers)``.
SUBCOMMAND_MODULES = (
    "dfdg.cmd_broker",
    "dfdg.cmd_worker",
    "dfdg.cmd_publish",
    "dfdg.cmd_subscribe",
    "dfdg.cmd_dead_letters",
    "dfdg.cmd_docs",
    "dfdg.cmd_subscribers",
    "dfdg.cmd_archive",
    "dfdg.cmd_lag",
    "dfdg.cmd_webhooks",
    "dfdg.cmd_acl",
    "dfdg.cmd_demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdg", description=__doc__)
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto",
                        help="JSON lines (default when not a terminal) or readable console output")
    parser.add_argument("--log-level", default=os.environ.get("DFDG_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from streams.logs import configure_logging

    configure_logging(args.log_format, args.log_level.upper())
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from dfdg.localbroker import BrokerError
        from streams.settings import ConfigError

        if isinstance(exc, BrokerError | ConfigError):
            print(f"dfdg: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
