"""``python -m benchmarks [--quick] [--only codec,deadlines,drain,pipeline,recovery,burst,latency]``.

Uses the broker at KAFKA_BOOTSTRAP_SERVERS, or the local broker (DFDG_HOME,
DFDG_BROKER_PORT), started if it is not running (and stopped again afterwards if this run
started it). Prints a table and writes the same figures to benchmarks/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import REPO, Context, Figure, delete_run_topics

BENCHES = {"codec": "benchmarks.codec_bench", "deadlines": "benchmarks.deadlines_bench",
           "drain": "benchmarks.drain_bench", "pipeline": "benchmarks.pipeline_bench",
           "recovery": "benchmarks.recovery_bench", "burst": "benchmarks.burst_bench",
           "latency": "benchmarks.latency_bench"}
# What a run without --only measures: all but the latency trace, which explains a figure of the
# pipeline benchmark rather than adding one of its own.
DEFAULT = [name for name in BENCHES if name != "latency"]
RESULTS = Path(__file__).resolve().parent / "results"
# New citizens (then as many due deadlines) in each machine speed probe: a few seconds.
SPEED_EVENTS = 2000


def machine() -> dict[str, object]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "ram_gib": round(mem / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def table(figures: list[Figure]) -> str:
    rows = [("bench", "metric", "value", "unit", "target", "note")]
    for f in figures:
        value = f"{f.value:,.2f}" if abs(f.value) < 100 else f"{f.value:,.0f}"
        rows.append((f.bench, f.metric, value, f.unit, f.target, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["| " + " | ".join(c.rjust(w) if i == 2 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (figures are noisy)")
    parser.add_argument("--only", default=",".join(DEFAULT),
                        help=f"comma-separated subset of {','.join(BENCHES)} (default: all but latency)")
    parser.add_argument("--partitions", type=int, default=int(os.environ.get("DFDG_PARTITIONS", "4")))
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="override one size (names are listed in the JSON output)")
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    needs_kafka = any(b in ("drain", "pipeline", "recovery", "burst", "latency") for b in chosen)
    bootstrap, started_broker = _broker() if needs_kafka else ("", None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="dfdg-bench-"))
    ctx = Context(bootstrap, args.quick, args.partitions, stamp.lower(), workdir,
                  {k: int(v) for k, v in (s.split("=", 1) for s in args.size)})
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    try:
        for name in chosen:
            print(f"== {name} ...", flush=True)
            figures += _machine_speed(name)
            began = time.monotonic()
            try:
                figures += importlib.import_module(BENCHES[name]).run(ctx)
            except Exception as exc:  # noqa: BLE001 - one failed benchmark must not lose the others' figures
                errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            timings[name] = round(time.monotonic() - began, 1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if bootstrap:
            _delete_topics(bootstrap, ctx.run_id)
        if started_broker is not None:
            print(started_broker.stop())
    print(table(figures))
    for name, err in errors.items():
        print(f"FAILED {name}: {err}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps({"timestamp": stamp, "quick": args.quick, "partitions": args.partitions,
                               "bootstrap": bootstrap, "machine": machine(), "sizes": ctx.sizes,
                               "seconds": timings, "errors": errors, "figures": [asdict(f) for f in figures]},
                              indent=2))
    print(f"written {out}")
    return 1 if errors else 0


def _delete_topics(bootstrap: str, run_id: str) -> None:
    try:
        deleted = asyncio.run(delete_run_topics(bootstrap, run_id))
        print(f"deleted the run's {len(deleted)} topics", flush=True)
    except Exception as exc:  # noqa: BLE001 - the figures are kept whatever the cleanup meets
        print(f"the run's topics (named *{run_id}*) were not deleted: {type(exc).__name__}: {exc}", flush=True)


def _machine_speed(name: str) -> list[Figure]:
    """This machine's speed right before a benchmark: the CPU of the door and the citizen step
    per event without the network (``benchmarks.profile_steps``, the same code every time). It
    moves by half between spells of this VM, Quix Streams and the raw passthrough with it; a
    figure is read beside the speed it was measured at."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.profile_steps", str(SPEED_EVENTS)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r"together (\d+) us/event.*a due deadline (\d+) us", done.stdout)
    if found is None:
        return [Figure("machine", f"speed before {name}", float("nan"), "us", note="profile_steps failed")]
    return [Figure("machine", f"speed before {name}: door + step CPU per new citizen", float(found[1]), "us",
                   note=f"no network; a due deadline {found[2]} us; lower is faster")]


def _broker() -> tuple[str, object | None]:
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return bootstrap, None
    from dfdg.localbroker import broker_from_env

    broker = broker_from_env()
    up, _ = broker.status()
    print(broker.start())
    return broker.bootstrap, None if up else broker


if __name__ == "__main__":
    raise SystemExit(main())
