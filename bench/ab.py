"""A/B of the CPU per single-event POST between this checkout and another, over
HTTP, alternated round by round: what a change to the write path did, measured
so that the host's drift falls on both sides alike.

    python -m bench.ab --other PATH [--store sqlite|postgres] [--rounds 8]
                       [--seconds 5] [--connections 32]

PATH is another checkout of this repository (`git worktree add /tmp/before
HEAD~1`), side A; this checkout is side B. Each side runs `traction serve
--no-projections` (2 workers) with its own checkout as the working directory:
gunicorn puts its working directory first on sys.path, so PYTHONPATH alone
would serve this checkout's code on both sides (an "A/B" that is an A/A).
Each side's store is made and filled by its own code (P1's 1,000 programmes
over 20 clinics), so each store is at its own side's schema. Then wrk runs
P1's load (`--connections 1`: one client posting one event at a time) against
A and B in turn (bench/scenario.py's `paired`, as every paired benchmark
here). Each side's medians over the rounds, and B/A of the CPU per request
round by round.

How to read it (2026-12-06): the same build on both sides differed by up to
25 % per round and 2 % in the median over six rounds, and the CPU per request
follows the throughput the host allows. A change is real when most rounds
agree; BENCHMARKS.md's P12 paragraph has the runs this was made for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, check_store_kind
from bench.load import require_wrk
from bench.scenario import Timing, paired

#: Run in a side's own checkout: its store made, filled and described by its own code.
SETUP = """
import json, sys
from bench.common import fresh_store, register
from bench.dataset import CLINICS
from bench.scenario import post_event_config, prestart, start_time
kind, name = sys.argv[1:3]
url = fresh_store(kind, name)
tokens = register(url, CLINICS)
start = start_time()
config = post_event_config(prestart(url, CLINICS, 1000, start), tokens["writers"], start)
print("AB_SETUP " + json.dumps({"url": url, "config": config}))
"""


#: Run in a side's own checkout: its store dropped (a SQLite store is under it).
TEAR_DOWN = """
import sys
from bench.common import drop_store
drop_store(*sys.argv[1:3])
"""


def side_env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root)}


def set_up(root: Path, kind: str, name: str) -> dict[str, Any]:
    """The side's store (made by the side's code) and its wrk configuration."""
    done = subprocess.run([sys.executable, "-c", SETUP, kind, name], cwd=root,
                          env=side_env(root), capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("AB_SETUP ")), None)
    if line is None:
        raise SystemExit(f"setting up {root} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(line.removeprefix("AB_SETUP "))


def cpu_ms(run: dict[str, Any]) -> float:
    """The workers' CPU per request of one of `paired`'s runs (as `summarize` counts it)."""
    return 1000 * sum(run["worker_cpu_share"]) / max(run["requests_per_s"], 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="side A's checkout")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    require_wrk()
    sides = {"A": args.other.resolve(), "B": ROOT}
    servers: dict[str, Server] = {}
    configs: dict[str, dict[str, Any]] = {}
    try:
        for name, root in sides.items():
            setup = set_up(root, kind, f"ab{name.lower()}")
            configs[name] = setup["config"]
            servers[name] = Server("traction", database_url=setup["url"], workers=2,
                                   root=root, label=f"ab-{name}")
        a, b = paired(servers["A"], servers["B"], configs["A"], configs["B"],
                      Timing(duration=args.seconds, warmup=3, rounds=args.rounds), "ab",
                      threads=min(2, args.connections), connections=args.connections,
                      names=("A", "B"))
    finally:
        for server in servers.values():
            server.stop()
        for name, root in sides.items():
            subprocess.run([sys.executable, "-c", TEAR_DOWN, kind, f"ab{name.lower()}"],
                           cwd=root, env=side_env(root), check=False)
    for (name, root), figures in zip(sides.items(), (a, b), strict=True):
        print(f"{name} ({root}): median {figures['cpu_ms_per_request']} ms CPU/req, "
              f"{figures['requests_per_s']:,} req/s, p50 {figures['p50_ms']} ms, "
              f"non-2xx {figures['non_2xx']}")
    ratios = [cpu_ms(run_b) / cpu_ms(run_a)
              for run_a, run_b in zip(a["runs"], b["runs"], strict=True)]
    print("B/A CPU per round:", ", ".join(f"{r:.2f}" for r in ratios),
          f"(B lower in {sum(r < 1 for r in ratios)} of {len(ratios)})")


if __name__ == "__main__":
    main()
