"""``dfdg subscribers list | add | suspend | resume``: manage the subscriber registry file.

The registry path comes from ``$DFDG_SUBSCRIBERS_FILE`` (default ``config/subscribers.json``).
Secrets are never passed on the command line: ``--secret-env VAR`` / ``--secret-file PATH``
record where the webhook secret is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processors.routing import InvalidSubscriberId
from processors.subscribers import Registry, RegistryError
from sinks import registry_store

__all__ = ["cmd_add", "cmd_list", "cmd_resume", "cmd_suspend", "format_table", "register"]


def format_table(registry: Registry) -> str:
    """The registry as a fixed-width table: id, topic, state, webhook yes/no."""
    rows = [("ID", "TOPIC", "STATE", "WEBHOOK")]
    rows += [(s.id, s.topic, s.state, "yes" if s.webhook_url else "no") for s in registry.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _change(args: argparse.Namespace, change: Any, done: str) -> int:
    try:
        registry_store.update(change)
    except (RegistryError, InvalidSubscriberId) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.id}: {done}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(format_table(registry_store.load()))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    if args.webhook and not (args.secret_env or args.secret_file):
        print("error: --webhook needs --secret-env VAR or --secret-file PATH", file=sys.stderr)
        return 2
    ref = f"env:{args.secret_env}" if args.secret_env else (f"file:{args.secret_file}" if args.secret_file else None)
    return _change(args, lambda r: r.add(args.id, args.webhook, ref), "added")


def cmd_suspend(args: argparse.Namespace) -> int:
    return _change(args, lambda r: r.suspend(args.id), "suspended (notifications are held until resumed)")


def cmd_resume(args: argparse.Namespace) -> int:
    return _change(args, lambda r: r.resume(args.id), "resumed (held notifications will be delivered)")


def register(subparsers: Any) -> None:
    """Add the ``subscribers`` command to the CLI's subparsers; each leaf sets ``args.func``."""
    p = subparsers.add_parser("subscribers", help="list and manage notification subscribers")
    sub = p.add_subparsers(dest="subscribers_cmd", required=True)
    sub.add_parser("list", help="show every subscriber").set_defaults(func=cmd_list)
    add = sub.add_parser("add", help="register a subscriber, e.g. jobcenter:101 or akasse:5")
    add.add_argument("id")
    add.add_argument("--webhook", metavar="URL", help="deliver by webhook to this URL")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", metavar="VAR", help="env var holding the whsec_ secret")
    secret.add_argument("--secret-file", metavar="PATH", help="file holding the whsec_ secret")
    add.set_defaults(func=cmd_add)
    for name, func, text in (("suspend", cmd_suspend, "close a subscriber's access (held, not dropped)"),
                             ("resume", cmd_resume, "reopen a subscriber's access")):
        leaf = sub.add_parser(name, help=text)
        leaf.add_argument("id")
        leaf.set_defaults(func=func)
