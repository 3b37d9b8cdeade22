"""P9: a retry storm. P1's load (wrk -t2 -c32, one event per request) with
(a) every event posted twice at the same moment, (b) 10 % random duplicates,
against P1 without duplicates in the same run.

    python -m bench.storm --store sqlite|postgres [--quick]

(a) Both wrk threads make the same events in the same order, so each event is
posted once by each thread at about the same moment, as a client retrying
while its first attempt is still in flight. (b) A tenth of the requests repeat
one of the thread's last 100 posts. Every answer is tallied: the events the
store gained must be exactly the 201s (each event stored once), with no 5xx.
Bars: each >= 0.8 of the plain run's requests/s; p99 <= 250 ms; no 5xx; every
event stored once.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import (
    Server,
    check_store_kind,
    drop_store,
    fresh_store,
    log,
    machine,
    now_iso,
    ratio,
    register,
    write_result,
)
from bench.dataset import CLINICS, store_head
from bench.ingest import P1_CONNECTIONS, P1_PROGRAMMES, WORKERS
from bench.load import require_wrk, run_wrk
from bench.scenario import Timing, post_event_config, prestart, start_time, summarize

#: The runs, each against the same server and store, alternating round by round.
MODES = {
    "plain": {},
    "pairs": {"duplicates": "pairs"},
    "random": {"duplicates": "random", "duplicate_share": 0.1},
}


def run_p9(kind: str, timing: Timing) -> dict[str, Any]:
    log(f"P9 retry storm on {kind}")
    result: dict[str, Any] = {
        "benchmark": "P9 retry storm", "store": kind, "measured_at": now_iso(),
        "machine": machine(), "timing": timing.describe(), "workers": WORKERS, "notes": []}
    url = fresh_store(kind, "p9")
    tokens = register(url, CLINICS)
    start = start_time()
    programmes = prestart(url, sorted(tokens["writers"]), P1_PROGRAMMES, start)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with Server("traction", database_url=url, workers=WORKERS, label=f"p9-{kind}") as ours:
        result["notes"] += ours.notes
        base = post_event_config(programmes, tokens["writers"], start, count_statuses=True)
        run_wrk(ours.base, base, duration=timing.warmup or 1, label=f"p9-{kind}-warmup",
                connections=P1_CONNECTIONS)
        for number in range(1, timing.rounds + 1):
            for mode, extra in MODES.items():
                head = settled_head(url)
                before = ours.cpu_seconds()
                run = run_wrk(ours.base, {**base, **extra}, duration=timing.duration,
                              label=f"p9-{kind}-{mode}-{number}", connections=P1_CONNECTIONS)
                after = ours.cpu_seconds()
                run["worker_cpu_share"] = [round((after[p] - before[p]) / run["seconds"], 2)
                                           for p in sorted(after) if p in before]
                run["events_stored"] = settled_head(url) - head
                runs[mode].append(run)
                log(f"    {mode}: statuses {run['statuses']}, stored {run['events_stored']}")
        result["worker_rss"] = ours.rss()
    drop_store(kind, "p9")
    figures = {mode: {**summarize(mode_runs), "checks": checks(mode_runs)}
               for mode, mode_runs in runs.items()}
    plain = figures["plain"]["requests_per_s"]
    passes = True
    for mode in ("pairs", "random"):
        figures[mode]["ratio"] = ratio(figures[mode]["requests_per_s"], plain)
        ok = ((figures[mode]["ratio"] or 0) >= 0.8 and figures[mode]["p99_ms"] <= 250
              and figures[mode]["checks"]["stored_once"] and not figures[mode]["checks"]["5xx"])
        figures[mode]["passes"] = ok
        passes = passes and ok
    result.update({
        "status": "ok",
        "load": f"wrk -t2 -c{P1_CONNECTIONS}, one event per request, {P1_PROGRAMMES} "
                f"programmes over {len(CLINICS)} clinics",
        "baseline_what": "the same server and load without duplicates (plain), same run",
        **figures, "passes": passes,
        "bars": {"ratio_min": 0.8, "p99_ms_max": 250},
        "reproduce": f"python -m bench.storm --store {kind}",
    })
    write_result(f"p9-{kind}", result)
    return result


def settled_head(url: str) -> int:
    """The store's head once the requests still in flight after a wrk run have
    landed (it stops moving)."""
    head = store_head(url)
    for _ in range(50):
        time.sleep(0.2)
        now = store_head(url)
        if now == head:
            return head
        head = now
    return head


def checks(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every answer 2xx, and the store gained the events answered 201: no more,
    but for the requests still in flight when wrk stopped counting (at most
    one per connection), whose answers it never saw. (A doubled event cannot
    be stored at all: the ledger's event_id is unique.)"""
    statuses: dict[int, int] = {}
    in_flight = 0
    for run in runs:
        in_flight += run["connections"]
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    created = statuses.get(201, 0)
    stored = sum(run["events_stored"] for run in runs)
    return {"statuses": statuses, "stored": stored, "answered_201": created,
            "unanswered_at_the_end_max": in_flight,
            "stored_once": created <= stored <= created + in_flight
            and not statuses.keys() - {200, 201},
            "5xx": sum(c for s, c in statuses.items() if s >= 500)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    require_wrk()
    result = run_p9(kind, Timing.of(args.quick))
    print(f"p9 {kind}: pairs {result['pairs']['ratio']} random {result['random']['ratio']} "
          f"passes {result['passes']}")


if __name__ == "__main__":
    main()
