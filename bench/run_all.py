"""Every performance benchmark, on SQLite and on PostgreSQL, then BENCHMARKS.md.

    python -m bench.run_all [--quick] [--stores sqlite,postgres] [--only p1,p2,...]
    make bench

Per store: P1 and P2 (bench/ingest.py), P5 (bench/reads.py), P6
(bench/lag.py), the cached 1,000,000- and 10,000-event stores
(bench/dataset.py: generated on first use, several minutes each), P3
(bench/rebuild.py, when it exists), P4 and P8 (bench/reads.py), P7
(bench/growth.py), P9 (bench/storm.py), P10 (bench/bulk.py: its memory part
uploads 1 GB, several minutes), P11 (bench/reads.py, on the 1,000,000-event
store), P12 (bench/ingest.py). A benchmark that fails is recorded as an error and the
rest go on; one whose endpoints do not exist yet records "not available
yet". The whole run keeps to a time budget (default 30 minutes, datasets
that already exist assumed): what would start after it is recorded as
skipped. Results: bench/results/*.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import report
from bench.common import (
    BENCH,
    ROOT,
    log,
    machine,
    now_iso,
    pg_available,
    write_result,
)
from bench.load import require_wrk
from bench.scenario import Timing

ALL = ("p1", "p2", "p5", "p6", "p3", "p4", "p7", "p9", "p10", "p11", "p12",
       "cpu", "hosts")  # cpu: bench/profile_cpu.py


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def run_rebuild(kind: str, events: int, budget_s: float) -> dict[str, Any]:
    """bench/rebuild.py (P3, by its own author) in a subprocess, if it exists."""
    if not (BENCH / "rebuild.py").exists():
        return {"status": "not available yet: no bench/rebuild.py"}
    command = [sys.executable, "-m", "bench.rebuild", "--store", kind, "--events", str(events)]
    log(f"P3 {' '.join(command[1:])}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=max(60, budget_s))
    if done.returncode != 0:
        return {"status": f"error: bench.rebuild exited {done.returncode}",
                "stderr": done.stderr[-2000:]}
    return {"status": "ok", "stdout": done.stdout[-2000:]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="5 s runs, one round; P3 on 100,000 events")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated: " + ",".join(ALL))
    parser.add_argument("--budget-minutes", type=float, default=30)
    args = parser.parse_args(argv)
    require_wrk()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    timing = Timing.of(args.quick)
    began = time.monotonic()
    deadline = began + args.budget_minutes * 60
    run: dict[str, Any] = {
        "started_at": now_iso(), "machine": machine(), "loadavg_start": loadavg(),
        "mode": "quick" if args.quick else "full",
        "timing_text": (f"{timing.duration:g} s per measured wrk run after a "
                        f"{timing.warmup:g} s warm-up, {timing.rounds} round(s) alternating "
                        "baseline and ours"),
        "command": "python -m bench.run_all" + (" --quick" if args.quick else "")
                   + ("" if args.stores == "sqlite,postgres" else f" --stores {args.stores}")
                   + ("" if only == set(ALL) else f" --only {args.only}"),
        "notes": [], "steps": [],
    }
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgres" in stores:
        if pg_available():
            version = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
                                      "SHOW server_version"], capture_output=True, text=True,
                                     timeout=10).stdout.strip()
            run["postgres_version"] = version or "?"
        else:
            stores.remove("postgres")
            run["notes"].append("PostgreSQL on 127.0.0.1:5432 was not reachable: skipped")

    from bench import bulk, dataset, growth, ingest, lag, profile_cpu, reads, storm

    def step(name: str, kind: str, action: Callable[[], Any]) -> Any:
        if time.monotonic() > deadline:
            run["steps"].append({"step": name, "store": kind, "status": "skipped: time budget"})
            write_result(f"{name}-{kind}", {"benchmark": name, "store": kind,
                                            "status": "skipped: over the time budget",
                                            "measured_at": now_iso(), "passes": None})
            return None
        started = time.monotonic()
        try:
            value = action()
            status = "ok"
        except Exception as error:  # noqa: BLE001 - record it, go on with the rest
            traceback.print_exc()
            value = None
            status = f"error: {type(error).__name__}: {error}"
            if name.startswith("p") and name[1:].isdigit():
                write_result(f"{name}-{kind}", {"benchmark": name, "store": kind,
                                                "status": status, "measured_at": now_iso(),
                                                "passes": None})
        run["steps"].append({"step": name, "store": kind, "status": status,
                             "seconds": round(time.monotonic() - started, 1)})
        write_result("run", run)
        return value

    for kind in stores:
        if "p1" in only:
            step("p1", kind, lambda k=kind: ingest.run_p1(k, timing))
        if "p2" in only:
            step("p2", kind, lambda k=kind: ingest.run_p2(k, timing))
        if "p5" in only:
            step("p5", kind, lambda k=kind: reads.run_p5(k, timing))
        if "p6" in only:
            step("p6", kind, lambda k=kind: lag.run_p6(k, timing))
        if "p9" in only:
            step("p9", kind, lambda k=kind: storm.run_p9(k, timing))
        if "p12" in only:
            step("p12", kind, lambda k=kind: ingest.run_p12(k, timing))
        if "p10" in only:
            lines, sizes = (20_000, [32, 96]) if args.quick else (100_000, [64, 1024])
            step("p10", kind, lambda k=kind, n=lines, m=sizes: bulk.run_p10(k, timing, n, m))
        big = small = None
        if only & {"p4", "p7", "p11"}:
            big = step("dataset-1m", kind,
                       lambda k=kind: dataset.ensure(k, 1_000_000, progress=False))
            if "p7" in only:
                small = step("dataset-10k", kind,
                             lambda k=kind: dataset.ensure(k, 10_000, progress=False))
        if "p3" in only:
            # 100,000 as well as 1,000,000 events: P8's rebuild RSS growth compares them.
            for events in (100_000,) if args.quick else (100_000, 1_000_000):
                outcome = step(f"p3-{events}", kind, lambda k=kind, e=events: run_rebuild(
                    k, e, deadline - time.monotonic()))
                if outcome and outcome.get("status") != "ok":
                    run["notes"].append(f"P3 ({events:,} events) on {kind}: "
                                        f"{outcome['status']}")
        if "p4" in only and big:
            step("p4", kind, lambda k=kind, m=big: reads.run_p4(k, timing, m))
        if "p11" in only and big:
            step("p11", kind, lambda k=kind, m=big: reads.run_p11(k, timing, m))
        if "p7" in only and big and small:
            step("p7", kind, lambda k=kind, b=big, s=small: growth.run_p7(k, timing, b, s))
        if "cpu" in only:  # where each request's CPU goes: what explains the failing bars
            step("cpu-profile", kind, lambda k=kind: profile_cpu.main(
                ["--store", k, "--requests", "100" if args.quick else "400"]))

    if "hosts" in only and "postgres" in stores:
        # Failover, replica lag, PostgreSQL's costs: on clusters of its own (bench/hosts.py).
        from bench import hosts

        step("hosts", "postgres", lambda: hosts.run(args.quick))
    run["finished_at"] = now_iso()
    run["seconds"] = round(time.monotonic() - began)
    run["loadavg_end"] = loadavg()
    write_result("run", run)
    report.write()
    log(f"done in {run['seconds']} s; table in BENCHMARKS.md")
    print(report.markdown(run))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
