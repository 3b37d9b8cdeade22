"""Where a bulk upload's CPU goes, per line (P10), in one process.

    python -m bench.profile_bulk [--store sqlite|postgres] [--lines 20000]
                                 [--rounds 3] [--profile]

P10 compares a CPU-bound pipeline with the library's batched save: its rate
is the inverse of the worker's time per line. This drives the real Flask app
in this process (no HTTP server; the body handed over as gunicorn would) with
uploads of bench/bulk.py's lines (1,000 programmes interleaved) to a fresh
store, one warm-up upload, then `--rounds` measured ones, each of new
programmes, and prints each round's CPU per line (`time.process_time`) and
wall time per line; the median of each. Wall above CPU is time the worker
waited (the database, mostly). With `--profile`, one more upload under
cProfile, its layers (bench/profile_cpu.py) and top functions by own time.

Not part of run_all: a tool for working on P10's path. Compare a change
with main by running both on the same machine in alternation.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from typing import Any

from bench.bulk import lines
from bench.common import check_store_kind, drop_store, fresh_store, log
from bench.profile_cpu import Scenario, by_layer


def upload_environ(scenario: Scenario, count: int, seed: int) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path="/v1/clinics/clinic-a/events:bulk", method="POST",
                          data=b"".join(lines(count, seed=seed)),
                          content_type="application/x-ndjson",
                          headers=scenario.writer).get_environ()


def upload(scenario: Scenario, environ: dict[str, Any], count: int) -> None:
    statuses: list[str] = []
    answer = b"".join(scenario.app(environ, lambda status, *_: statuses.append(status)))
    summary = answer.rstrip().rsplit(b"\n", 1)[-1]
    if not statuses[0].startswith("200") or b'"recorded":%d' % count not in summary:
        raise RuntimeError(f"the upload was not all recorded: {statuses} {summary[:300]!r}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_bulk",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    os.environ.setdefault("TRACTION_LOG_LEVEL", "warning")
    scenario = Scenario(fresh_store(kind, "profile-bulk"))
    try:
        # Every body made before anything is measured; each of new programmes.
        environs = [upload_environ(scenario, args.lines, seed)
                    for seed in range(args.rounds + 1 + args.profile)]
        upload(scenario, environs[0], args.lines)
        cpu, wall = [], []
        for environ in environs[1:args.rounds + 1]:
            began, clock = time.process_time(), time.perf_counter()
            upload(scenario, environ, args.lines)
            cpu.append((time.process_time() - began) / args.lines * 1e6)
            wall.append((time.perf_counter() - clock) / args.lines * 1e6)
        log(f"bulk on {kind}: CPU per line {', '.join(f'{v:.1f}' for v in cpu)} µs "
            f"(median {statistics.median(cpu):.1f}); wall per line "
            f"{', '.join(f'{v:.1f}' for v in wall)} µs (median {statistics.median(wall):.1f})")
        result: dict[str, Any] = {"store": kind, "lines": args.lines,
                                  "cpu_us_per_line": statistics.median(cpu),
                                  "wall_us_per_line": statistics.median(wall)}
        if args.profile:
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            upload(scenario, environs[-1], args.lines)
            profile.disable()
            result["layers"] = by_layer(profile)
            for row in result["layers"]:
                print(f"  {row['share_pct']:5.1f} %  {row['layer']}")
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(30)
            print(text.getvalue())
    finally:
        scenario.close()
        drop_store(kind, "profile-bulk")
    return result


if __name__ == "__main__":
    main()
