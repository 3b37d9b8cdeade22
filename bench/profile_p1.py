"""Where P1's time goes: py-spy on the gunicorn workers under P1's load.

    python -m bench.profile_p1 [--store sqlite|postgres] [--seconds 15]

Runs P1's load (wrk -t2 -c32, one new event per request) against
`traction serve --no-projections` and samples both workers with py-spy (in
the venv: pip install py-spy; it needs ptrace, i.e. root or
CAP_SYS_PTRACE), in two phases: worker 1 as a flame graph
(bench/results/p1-profile.svg; p1-profile-postgres.svg on PostgreSQL) and
worker 2 as collapsed stacks, then both as collapsed stacks. Only the
threads handling a request count: the tables of bench/results/
p1-profile-<store>.json (and BENCHMARKS.md) give shares of request time —
waits by who waits, own time, and time in and under a function — plus each
worker's CPU use. Figures under the profiler are slower than P1's: only the
shares matter.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    ROOT,
    Server,
    check_store_kind,
    cpu_seconds,
    drop_store,
    fresh_store,
    log,
    now_iso,
    register,
    write_result,
)
from bench.dataset import CLINICS
from bench.load import require_wrk, run_wrk
from bench.scenario import post_event_config, prestart, start_time

#: Frames of waiting, not working (threads parked on a selector, a queue or a condition).
IDLE = ("EpollSelector.select (", "Condition.wait (", "_worker (concurrent",
        "ThreadWorker.wait_for_and_dispatch_events (")
#: Only samples of threads inside a request count: shares are of request time.
REQUEST_FRAME = "ThreadWorker.handle_request ("
#: Where the interesting totals are: our code and the libraries it calls per request.
OURS = ("domain/", "service/", "projections/", "eventsourcing/", "marshmallow/",
        "flask_smorest/", "psycopg", "json/", "sqlite3", "webargs/", "prometheus_client/")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def top_functions(raw: Path, count: int = 25) -> tuple[int, list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
    """From py-spy's collapsed stacks: total samples, top by own time, top by total time."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        # "function (file.py:line)" -> "function (file.py)": one row per function.
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if not any(f.startswith(REQUEST_FRAME) for f in frames):
            continue  # not a thread handling a request (the arbiter loop, pool workers)
        n = int(number)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "self_pct": round(100 * own[f] / samples, 1),
                 "total_pct": round(100 * total[f] / samples, 1)}
                for f, _ in counter.most_common(count)]

    return samples, rows(own), rows(total)


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def record(spy: str, pids: list[int], seconds: int, outputs: list[tuple[str, Path]]) -> None:
    """py-spy record on each pid at once (one output format and path per pid)."""
    spies = []
    for pid, (fmt, path) in zip(pids, outputs, strict=True):
        command = [spy, "record", "--pid", str(pid), "--duration", str(seconds),
                   "--format", fmt, "-o", str(path)]
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
    for spy_process in spies:
        _, err = spy_process.communicate(timeout=seconds + 60)
        if spy_process.returncode != 0:
            raise SystemExit(f"py-spy failed: {err.decode()[-1000:]}")


def summary(raw: list[Path]) -> dict[str, Any]:
    merged = raw[0].with_suffix(".merged.tmp")
    merged.write_text("".join(p.read_text() for p in raw if p.exists()))
    samples, by_self, by_total = top_functions(merged, count=200)
    merged.unlink()
    waits = wait_callers(raw)
    return {
        "samples": samples,
        "waits": waits,
        "top_self": [r for r in by_self if not r["function"].startswith(IDLE)][:40],
        "top_total": [r for r in by_total if any(k in r["function"] for k in OURS)][:60],
    }


def wait_callers(raw: list[Path]) -> list[dict[str, Any]]:
    """Samples parked in a wait, by the nearest frame of our code (or a library) above it."""
    callers: Counter[str] = Counter()
    samples = 0
    for path in raw:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, number = line.rpartition(" ")
            if not number.isdigit():
                continue
            frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
            if not any(f.startswith(REQUEST_FRAME) for f in frames):
                continue
            samples += int(number)
            if not frames[-1].startswith(IDLE):
                continue
            caller = next((f for f in reversed(frames[:-1])
                           if any(k in f for k in OURS)), frames[-1])
            callers[f"{frames[-1]} <- {caller}"] += int(number)
    return [{"function": f, "self_pct": round(100 * n / samples, 1)}
            for f, n in callers.most_common(10)] if samples else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_p1", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=int, default=15, help="of each of the two phases")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    require_wrk()
    spy = py_spy()
    url = fresh_store(kind, "profile")
    tokens = register(url, CLINICS)
    start = start_time()
    config = post_event_config(prestart(url, CLINICS, 1000, start), tokens["writers"], start)
    RESULTS.mkdir(parents=True, exist_ok=True)
    svg = RESULTS / ("p1-profile.svg" if kind == "sqlite" else f"p1-profile-{kind}.svg")
    raws = [RESULTS / f"p1-profile-{n}.raw.tmp" for n in range(4)]
    with Server("traction", database_url=url, workers=2, label=f"profile-{kind}") as server:
        run_wrk(server.base, config, duration=3, label="profile-warmup")
        pids = server.worker_pids()[:2]
        load: dict[str, Any] = {}
        loader = threading.Thread(target=lambda: load.update(run_wrk(
            server.base, config, duration=2 * args.seconds + 6, label="profile-load")))
        loader.start()
        cpu_before, machine_before, began = cpu_seconds(pids), machine_busy(), time.monotonic()
        # Phase 1, wall clock of active threads: a flame graph of worker 1, stacks of worker 2.
        record(spy, pids, args.seconds, [("flamegraph", svg), ("raw", raws[0])])
        # Phase 2, more samples of both workers for the tables.
        record(spy, pids, args.seconds, [("raw", raws[1]), ("raw", raws[2])])
        elapsed = time.monotonic() - began
        cpu_after, machine_after = cpu_seconds(pids), machine_busy()
        cpu = {
            "worker_cpu_share": [round((cpu_after[pid] - cpu_before[pid]) / elapsed, 2)
                                 for pid in pids],
            "machine_busy_share": round(
                (machine_after[0] - machine_before[0])
                / max(1, machine_after[1] - machine_before[1]), 2),
        }
        loader.join(2 * args.seconds + 60)
    drop_store(kind, "profile")
    wall = summary(raws[:3])
    for path in raws:
        path.unlink(missing_ok=True)
    result = {"benchmark": "P1 profile (py-spy)", "store": kind, "measured_at": now_iso(),
              "seconds": args.seconds, "samples": wall["samples"], "load": load,
              "svg": str(svg.relative_to(ROOT)), "top_self": wall["top_self"],
              "top_total": wall["top_total"], "waits": wall["waits"], "cpu": cpu,
              "reproduce": f"python -m bench.profile_p1 --store {kind}"}
    write_result(f"p1-profile-{kind}", result)
    log(f"profile: {wall['samples']} samples; flame graph in {svg.relative_to(ROOT)}")
    print(f"{wall['samples']} samples of threads handling a request; "
          f"each worker used {cpu['worker_cpu_share']} of a core (the profiler included); "
          f"the machine's cores were {cpu['machine_busy_share']:.0%} busy")
    print("waiting (own time in a wait, by the function that waits):")
    for row in wall["waits"][:8]:
        print(f"  {row['self_pct']:5.1f}%  {row['function']}")
    print("top by own time, waits excluded:")
    for row in wall["top_self"][:25]:
        print(f"  {row['self_pct']:5.1f}% self {row['total_pct']:5.1f}% total  {row['function']}")
    print("top by total time (our code and its libraries):")
    for row in wall["top_total"][:40]:
        print(f"  {row['total_pct']:5.1f}% total  {row['function']}")


if __name__ == "__main__":
    main()
