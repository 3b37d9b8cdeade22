"""What rendering the dashboards costs per written batch (time to response included).

    python -m bench.render [--programmes 10000] [--clinics 20] [--repeat 7]

The projection renders a clinic's dashboard whenever a batch changes it, and
the network's whenever any clinic changes (engine.flush): every cohort's
Kaplan–Meier estimate, the intervals, the comparisons. Reads only send the
stored JSON, so this is the cost a busy runner pays per batch, and what a
rebuild pays once at its end. Measured on totals built through the
projection's own contribution path (dashboards.apply_contribution) for
P4's shape of store (10,000 programmes in 20 clinics), against a baseline in
the same run: encoding the same totals as the JSON the store already writes
per batch (store.canonical_json). Also the sizes of the rendered bodies.
Medians of --repeat runs, CPU time (process_time), so a busy machine
disturbs them less.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import common
from domain.vocabulary import CONDITIONS, MODALITIES, OUTCOMES, SETTINGS
from projections import dashboards
from projections.metrics import US_PER_DAY
from projections.store import canonical_json, to_json


def build(programmes: int, clinics: int, seed: int = 1) -> tuple[dict[str, Any], Any]:
    """Clinic totals and the network's, from plausible programme contributions."""
    rng = random.Random(seed)
    by_clinic: dict[str, Any] = {}
    network = dashboards.new_totals()
    for c in range(clinics):
        totals = dashboards.new_totals()
        delta = dashboards.new_delta()
        for _ in range(programmes // clinics):
            reported = rng.random() < 0.9
            last = rng.randrange(0, 90 * US_PER_DAY) if reported else 0
            moderate = reported and rng.random() < 0.5
            response = rng.randrange(0, last + 1) if moderate else last
            substantial = moderate and rng.random() < 0.6
            later = rng.randrange(response, last + 1) if substantial else last
            status = rng.choice(("active", "discharged", "discharged"))
            dashboards.apply_contribution(delta, [
                status, rng.choice(OUTCOMES) if status == "discharged" else None,
                rng.choice(SETTINGS), rng.choice(MODALITIES), rng.choice(CONDITIONS),
                rng.randint(3, 10), rng.randint(0, 1_000_000) if rng.random() < 0.95 else None,
                int(reported), rng.randint(-7, 2) if reported else None,
                response, int(moderate), later, int(substantial),
                rng.randint(0, 150), [rng.randint(0, 2), rng.randint(0, 1), 0],
                rng.randrange(US_PER_DAY, 100 * US_PER_DAY)], 1)
        dashboards.apply_delta(totals, delta)
        dashboards.apply_delta(network, delta, times=False)
        by_clinic[f"clinic-{c:02d}"] = totals
    return by_clinic, network


def _timed(work: Callable[[], Any]) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000


def cpu_ms(work: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        # Every estimate computed afresh: the worst case, a batch that moved every
        # cohort's times (dashboards remembers the last estimates by their input).
        dashboards._estimated.cache_clear()
        started = time.process_time()
        work()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programmes", type=int, default=10_000)
    parser.add_argument("--clinics", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    clinics, network = build(args.programmes, args.clinics)
    first = next(iter(clinics))
    clinic_ms = cpu_ms(lambda: dashboards.clinic_dashboard(first, clinics[first]), args.repeat)
    network_ms = cpu_ms(lambda: dashboards.network_dashboard(network, clinics), args.repeat)
    dashboards.network_dashboard(network, clinics)
    unchanged = statistics.median(
        _timed(lambda: dashboards.network_dashboard(network, clinics)) for _ in range(args.repeat))
    encode_ms = cpu_ms(lambda: (canonical_json(clinics[first]), canonical_json(network)),
                       args.repeat)
    clinic_body = len(to_json(dashboards.clinic_dashboard(first, clinics[first])))
    network_body = len(to_json(dashboards.network_dashboard(network, clinics)))
    result = {
        "benchmark": "dashboard rendering per written batch (engine.flush)",
        "measured_at": common.now_iso(),
        "machine": common.machine(),
        "programmes": args.programmes,
        "clinics": args.clinics,
        "repeat": args.repeat,
        "clinic_render_cpu_ms": round(clinic_ms, 2),
        "network_render_cpu_ms": round(network_ms, 2),
        "network_render_unchanged_times_cpu_ms": round(unchanged, 2),
        "baseline": "canonical JSON of one clinic's totals and the network's (written per batch)",
        "baseline_cpu_ms": round(encode_ms, 2),
        "clinic_dashboard_bytes": clinic_body,
        "network_view_bytes": network_body + sum(
            len(to_json(dashboards.clinic_dashboard(c, t))) for c, t in clinics.items()),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "reproduce": f"python -m bench.render --programmes {args.programmes} "
                     f"--clinics {args.clinics}",
    }
    for key in ("clinic_render_cpu_ms", "network_render_cpu_ms",
                "network_render_unchanged_times_cpu_ms", "baseline_cpu_ms",
                "clinic_dashboard_bytes", "network_view_bytes", "load_average_1m"):
        print(f"{key:<24} {result[key]:,}")
    path = common.write_result("render", result)
    print(f"written to {path.relative_to(common.ROOT)}")
    return result


if __name__ == "__main__":
    main()
