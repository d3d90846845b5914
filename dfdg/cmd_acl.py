"""``dfdg acl sync [--dry-run]`` and ``dfdg acl users add <principal>``.

``sync`` makes the broker's ACLs match the subscriber and publisher registries (``dfdg.acl``).
``users add`` creates (or re-keys) a SCRAM-SHA-512 login. The password is never an argument:
``--password-file`` reads it from a file; without it a strong one is generated and written to
``$DFDG_HOME/credentials/<user>.password`` (0600), whose path is printed for hand-over.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dfdg.acl import AclError, user_name
from dfdg.acl_admin import AclAdminError
from dfdg.acl_sync import admin_from_env, log, sync
from dfdg.localbroker.manager import default_home
from dfdg.localbroker.secure import write_private

__all__ = ["cmd_sync", "cmd_users_add", "register"]


def cmd_sync(args: argparse.Namespace) -> int:
    try:
        changes = sync(admin_from_env(), os.environ.get("DFDG_APP_ID", "dfdg"), dry_run=args.dry_run)
    except (AclError, AclAdminError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prefix = "would " if args.dry_run else ""
    for acl in changes.add:
        print(f"{prefix}grant  {acl.describe()}")
    for acl in changes.delete:
        print(f"{prefix}revoke {acl.describe()}")
    print(f"{len(changes.add)} to grant, {len(changes.delete)} to revoke" + (" (dry run)" if args.dry_run else ""))
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    try:
        user = user_name(args.principal if ":" in args.principal else f"User:{args.principal}")
    except AclError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.password_file:
        password = Path(args.password_file).read_text(encoding="utf-8").strip()
        where = args.password_file
    else:
        password = secrets.token_urlsafe(24)
        out_dir = default_home() / "credentials"
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        where = str(out_dir / f"{user}.password")
        write_private(Path(where), password + "\n")
    try:
        admin_from_env().upsert_user(user, password)
    except AclAdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("acl.user.upserted", user=user, mechanism="SCRAM-SHA-512", at=datetime.now(UTC).isoformat())
    print(f"User:{user}: SCRAM-SHA-512 login set; password in {where} (hand it over, then delete it)")
    return 0


def register(subparsers: Any) -> None:
    """Add ``acl sync`` and ``acl users add`` to the CLI."""
    p = subparsers.add_parser("acl", help="broker ACLs and SCRAM logins from the registries")
    sub = p.add_subparsers(dest="acl_cmd", required=True)
    s = sub.add_parser("sync", help="make the broker's ACLs match the subscriber/publisher registries")
    s.add_argument("--dry-run", action="store_true", help="print the changes, apply nothing")
    s.set_defaults(func=cmd_sync)
    users = sub.add_parser("users", help="SCRAM logins").add_subparsers(dest="users_cmd", required=True)
    add = users.add_parser("add", help="create or re-key a login, e.g. User:akasse-5")
    add.add_argument("principal")
    add.add_argument("--password-file", metavar="PATH", help="read the password from this file")
    add.set_defaults(func=cmd_users_add)
