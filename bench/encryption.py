"""The cost of sealing personal fields: P1 with sealing on and off, and P3's rebuild.

    python -m bench.encryption [--store sqlite|postgres] [--requests 600]
                               [--rebuild-events 50000]

1. P1's CPU per request, in this process (the real Flask app through its WSGI
   entry, as bench/profile_cpu.py drives it), with sealing on (the store's
   keyring, as the service runs) and off (the same application with no seal:
   fields stored as posted), each on a fresh store of its own, measured in
   alternating rounds in the same run so that both see the same machine:
   - "P1 one event": a session posted to one of 100 programmes (as P1's load
     posts; a session has no personal field, so this is what sealing costs a
     request that has nothing to seal: the mapper's check);
   - "free text": an adverse event with its description (one field sealed);
   - "a programme start": a new programme (a data key made, wrapped and
     stored in a transaction of its own, and patient_ref sealed): once per
     programme, the most sealing ever costs a post.
   Bar (issue 15): P1 with sealing at most 10 % above without; the other two
   are shown for what they are.
2. P3: `python -m bench.rebuild` on a store of --rebuild-events events whose
   personal fields are sealed (the projection never opens them): rebuild vs
   read + decode (the library's mapper, which opens them) and vs the stricter
   read + decode as the rebuild does (which does not). Bar: >= 0.5.

Writes bench/results/encryption-<store>.json and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import rebuild as rebuild_bench
from bench.common import check_store_kind, drop_store, fresh_store, log, now_iso, write_result
from bench.profile_cpu import Scenario
from bench.reads import programme_batches

#: Alternating rounds of each side: the machine is shared, and noise is slow.
ROUNDS = 6


def _unsealed(scenario: Scenario) -> Scenario:
    """The same application with no seal: personal fields stored as posted."""
    programmes = scenario.components.programmes
    programmes.seal = None
    programmes.mapper.seal = None
    return scenario


def _one_event(scenario: Scenario) -> Callable[[int], dict[str, Any]]:
    programmes = [scenario.new_programme(1) for _ in range(100)]

    def request(n: int) -> dict[str, Any]:
        start, session = programme_batches(scenario.rng, 2)[0]
        session["occurred_at"] = start["occurred_at"]  # never before the start
        session["event_id"] = str(uuid.UUID(int=n + 1, version=4))
        return scenario.post(programmes[n % len(programmes)], session)
    return request


def _free_text(scenario: Scenario) -> Callable[[int], dict[str, Any]]:
    programmes = [scenario.new_programme(1) for _ in range(100)]

    def request(n: int) -> dict[str, Any]:
        start, _ = programme_batches(scenario.rng, 2)[0]
        adverse = {"event_id": str(uuid.UUID(int=n + 1, version=4)),
                   "type": "AdverseEventReported", "occurred_at": start["occurred_at"],
                   "recorded_by": "bench.writer",
                   "data": {"severity": "mild",
                            "description": f"soreness after session {n}, resolved next day"}}
        return scenario.post(programmes[n % len(programmes)], adverse)
    return request


def _programme_start(scenario: Scenario) -> Callable[[int], dict[str, Any]]:
    def request(n: int) -> dict[str, Any]:
        start, _ = programme_batches(scenario.rng, 2)[0]
        start["event_id"] = str(uuid.UUID(int=n + 1, version=4))
        start["data"]["patient_ref"] = f"pt-{n:07d}"
        return scenario.post(str(uuid.uuid4()), start)
    return request


#: Each kind of post; the bar is P1's (a session, as P1's load posts).
WORKLOADS = {"P1 one event": _one_event, "free text (an adverse event)": _free_text,
             "a programme start (a new data key)": _programme_start}


def cpu_per_request(kind: str, workload: str, requests: int) -> dict[str, Any]:
    """CPU per request with sealing on and off, in alternating rounds."""
    sides: dict[str, tuple[Scenario, Callable[[int], dict[str, Any]]]] = {}
    names = {"on": f"enc-on-{os.getpid()}", "off": f"enc-off-{os.getpid()}"}
    try:
        for side, name in names.items():
            scenario = Scenario(fresh_store(kind, name))
            if side == "off":
                _unsealed(scenario)
            sides[side] = (scenario, WORKLOADS[workload](scenario))
        per_round = max(requests // ROUNDS, 20)
        # Built before anything is timed; the first round of each side warms it up.
        built = {side: [request(n) for n in range((ROUNDS + 1) * per_round)]
                 for side, (_, request) in sides.items()}
        cpu = {"on": 0.0, "off": 0.0}
        for round_number in range(ROUNDS + 1):
            for side in (("on", "off") if round_number % 2 else ("off", "on")):
                scenario = sides[side][0]
                environs = built[side][round_number * per_round:(round_number + 1) * per_round]
                began = time.process_time()
                for environ in environs:
                    scenario.run(environ)
                if round_number:  # round 0 warms caches, connections, imports
                    cpu[side] += time.process_time() - began
    finally:
        for scenario, _ in sides.values():
            scenario.close()
        for name in names.values():
            drop_store(kind, name)
    timed = ROUNDS * per_round
    on_ms, off_ms = (cpu[side] / timed * 1000 for side in ("on", "off"))
    ratio = on_ms / off_ms
    log(f"  {workload}: {on_ms:.3f} ms CPU/request sealed, {off_ms:.3f} ms not "
        f"({(ratio - 1) * 100:+.1f} %)")
    return {"workload": workload, "requests_per_side": timed,
            "cpu_ms_per_request_sealed": round(on_ms, 3),
            "cpu_ms_per_request_unsealed": round(off_ms, 3),
            "ratio": round(ratio, 3), "bar": 1.10 if workload == "P1 one event" else None,
            "passes": ratio <= 1.10 if workload == "P1 one event" else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.encryption",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rebuild-events", type=int, default=50_000,
                        help="events in P3's store (0: skip P3)")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    os.environ.setdefault("TRACTION_LOG_LEVEL", "warning")
    log(f"sealing personal fields: CPU per request on and off, on {kind}")
    p1 = [cpu_per_request(kind, workload, args.requests) for workload in WORKLOADS]
    p3 = None
    if args.rebuild_events:
        log(f"P3: rebuild of {args.rebuild_events:,} events with sealed personal fields")
        p3 = rebuild_bench.main(["--store", kind, "--events", str(args.rebuild_events)])
    result = {
        "benchmark": "sealing personal fields: P1 CPU on vs off, P3 rebuild ratio",
        "store": kind,
        "measured_at": now_iso(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "p1": p1,
        "p3": None if p3 is None else {
            key: p3[key] for key in ("events", "ratio", "cpu_ratio", "ratio_to_lean_baseline",
                                     "cpu_ratio_to_lean_baseline", "rebuild_events_per_s",
                                     "baseline_events_per_s", "lean_baseline_events_per_s",
                                     "passes")},
        "reproduce": f"python -m bench.encryption --store {kind} --requests {args.requests} "
                     f"--rebuild-events {args.rebuild_events}",
    }
    write_result(f"encryption-{kind}", result)
    return result


if __name__ == "__main__":
    main()
