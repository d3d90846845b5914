"""The broker side of ``dfdg acl``: read and change ACLs and SCRAM users as the admin.

aiokafka (0.14) has no ACL or SCRAM-user requests, so this drives Kafka's own Admin API through
``dfdg/localbroker/AclAdmin.java`` on the broker's classpath, one JVM per call. The admin's
login goes to the JVM in a 0600 temp properties file, deleted afterwards; SCRAM passwords go
through stdin, never argv, and nothing here logs them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dfdg.acl import Acl
from dfdg.localbroker.jars import JavaSetupError, compile_java
from dfdg.localbroker.manager import HERE, default_home, java_command, resolve_classpath
from dfdg.localbroker.secure import write_private
from streams.kafka_auth import java_client_properties

__all__ = ["AclAdmin", "AclAdminError"]

TOOL = HERE / "AclAdmin.java"


class AclAdminError(RuntimeError):
    """The broker refused or could not be reached; the message is the Admin API's reason."""


def _fields(acl: Acl) -> list[str]:
    return [acl.resource_type, acl.name, acl.pattern, acl.principal, acl.host, acl.operation, acl.permission]


def _compiled(classpath: str, cache: Path) -> tuple[str, str]:
    """(classpath, main class): ``AclAdmin.class`` compiled by ECJ once per source version (the
    wheel's JVM has no javac and no source-file mode)."""
    try:
        out = compile_java(TOOL, classpath, cache / "classes")
    except JavaSetupError as exc:
        raise AclAdminError(str(exc)) from exc
    return classpath + os.pathsep + str(out), "AclAdmin"


class AclAdmin:
    """ACL and SCRAM-user administration of the broker at ``bootstrap`` with login ``auth``."""

    def __init__(self, bootstrap: str, auth: Mapping[str, Any], classpath_cache: Path | None = None) -> None:
        self.bootstrap = bootstrap
        self._auth = dict(auth)
        self._cache = classpath_cache or default_home()

    def _run(self, commands: Iterable[list[str]], timeout_s: float = 120.0) -> list[list[str]]:
        self._cache.mkdir(parents=True, exist_ok=True)
        classpath, main = _compiled(resolve_classpath(self._cache), self._cache)
        props = java_client_properties(self._auth) + f"bootstrap.servers={self.bootstrap}\n"
        props += "request.timeout.ms=20000\ndefault.api.timeout.ms=30000\n"
        with tempfile.TemporaryDirectory(prefix="dfdg-acl-") as tmp:
            path = Path(tmp) / "admin.properties"
            write_private(path, props)
            stdin = "".join("\t".join(c) + "\n" for c in commands)
            proc = subprocess.run(java_command(classpath, main, str(path), heap="256m"),
                                  input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR ")]
            raise AclAdminError(errors[-1][6:] if errors else proc.stderr.strip()[-400:])
        return [ln.split("\t") for ln in proc.stdout.splitlines() if "\t" in ln]

    def list_acls(self) -> list[Acl]:
        """Every ACL the broker holds."""
        out = []
        for f in self._run([["list"]]):
            if f[0] == "ACL":
                rtype, name, pattern, principal, host, op, perm = f[1:8]
                out.append(Acl(principal, rtype, name, pattern, op, perm, host))
        return out

    def apply(self, add: Iterable[Acl], delete: Iterable[Acl]) -> None:
        """Delete then create, in one JVM."""
        commands = [["del", *_fields(a)] for a in delete] + [["add", *_fields(a)] for a in add]
        if commands:
            self._run(commands)

    def upsert_user(self, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> None:
        """Create the SCRAM login ``user`` or replace its password."""
        if "\t" in password or "\n" in password or "\t" in user:
            raise AclAdminError("user names and passwords may not contain tabs or newlines")
        self._run([["scram", user, mechanism, password]])

    def users(self) -> dict[str, list[str]]:
        """SCRAM user -> mechanisms it has a login for."""
        out: dict[str, list[str]] = {}
        for f in self._run([["users"]]):
            if f[0] == "USER":
                out.setdefault(f[1], []).append(f[2])
        return out
