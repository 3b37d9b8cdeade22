"""P6: projection lag, record to read model, while ingest runs at half P1's rate.

    python -m bench.lag --store sqlite|postgres [--rate N] [--quick]

`traction serve` WITH its projection runner on a fresh store; wrk posts
single events at half the requests/s that P1 measured on this store
(bench/results/p1-<store>.json; or --rate), paced by the Lua delay(). Beside
it, a probe posts one event every 100 ms and times how long until a
projection read shows it: from the 201 (the event is committed) until
GET /v1/clinics/{c}/dashboard answers with X-Projection-Position >= the
event's position (one request with ?min_position=P when the endpoint
supports it, else polling every 10 ms). /readyz's reported lag is sampled
every second too. Bar: p99 <= 250 ms.

Needs the projection endpoints; without them it records "not available yet".
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from typing import Any

from bench.common import (
    ROOT,
    Server,
    check_store_kind,
    drop_store,
    fresh_store,
    http,
    log,
    machine,
    now_iso,
    read_result,
    register,
    write_result,
)
from bench.dataset import CLINICS
from bench.load import require_wrk, run_wrk
from bench.scenario import (
    Timing,
    event_times,
    has_routes,
    post_event_config,
    prestart,
    route_parameters,
    start_time,
)

WORKERS = 2
DASHBOARD = "/v1/clinics/{clinic_id}/dashboard"
PROBE_EVERY = 0.1
VISIBLE_WITHIN = 5.0
CONNECTIONS = 16


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


def caught_up(readyz: dict[str, Any] | None) -> bool:
    projections = (readyz or {}).get("projections") or []
    return bool(projections) and all(p.get("lag_events") == 0 for p in projections)


def wait_ready(server: Server, seconds: float = 120) -> dict[str, Any] | None:
    """Wait until /readyz answers 200 with every projection caught up (lag 0);
    its last body."""
    deadline = time.monotonic() + seconds
    body: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status, raw, _ = http("GET", server.base + "/readyz", timeout=5)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status == 200 and caught_up(body):
            return body
        time.sleep(0.5)
    return body


def probe_lag(server: Server, clinic_id: str, programme: dict[str, str], writer: str,
              viewer: str, times: list[str], use_min_position: bool, stop: threading.Event
              ) -> tuple[list[float], list[str]]:
    """Post an event, then time until the dashboard's projection position reaches it."""
    lags: list[float] = []
    problems: list[str] = []
    path = f"/v1/clinics/{clinic_id}/programmes/{programme['programme_id']}/events"
    dashboard = server.base + f"/v1/clinics/{clinic_id}/dashboard"
    number = 0
    while not stop.is_set():
        began = time.monotonic()
        number += 1
        status, raw, _ = http("POST", server.base + path, {
            "event_id": str(uuid.uuid4()), "type": "PainReported",
            "occurred_at": times[number % len(times)], "recorded_by": "bench.probe",
            "data": {"pain_nrs": number % 11, "context": "follow_up"}}, token=writer)
        acknowledged = time.monotonic()
        if status != 201:
            problems.append(f"probe post answered {status}")
            stop.wait(PROBE_EVERY)
            continue
        position = max(r["position"] for r in json.loads(raw)["recorded"])
        seen = False
        while time.monotonic() - acknowledged < VISIBLE_WITHIN:
            url = dashboard + (f"?min_position={position}" if use_min_position else "")
            status, _, headers = http("GET", url, token=viewer, timeout=VISIBLE_WITHIN + 5)
            header = {k.lower(): v for k, v in headers.items()}.get("x-projection-position")
            if status == 200 and header is not None and int(header) >= position:
                seen = True
                break
            if status not in (200, 503):
                problems.append(f"dashboard answered {status}")
                break
            time.sleep(0.01)
        if seen:
            lags.append((time.monotonic() - acknowledged) * 1000)
        else:
            problems.append(f"position {position} not visible within {VISIBLE_WITHIN} s")
        stop.wait(max(0.0, PROBE_EVERY - (time.monotonic() - began)))
    return lags, problems


def run_p6(kind: str, timing: Timing, rate: float | None = None) -> dict[str, Any]:
    log(f"P6 projection lag under ingest on {kind}")
    result = {"benchmark": "P6 projection lag while ingest runs at half P1's rate",
              "store": kind, "measured_at": now_iso(), "machine": machine(),
              "timing": timing.describe(), "workers": WORKERS, "notes": []}
    if rate is None:
        p1 = read_result(f"p1-{kind}")
        if p1 and p1.get("ours"):
            rate = round(p1["ours"]["requests_per_s"] / 2, 1)
            result["rate_from"] = f"half of P1's {p1['ours']['requests_per_s']} req/s " \
                                  f"({p1['measured_at']})"
        else:
            rate = 100.0
            result["notes"].append("no P1 result for this store: ingest at 100 req/s")
    url = fresh_store(kind, "p6")
    tokens = register(url, CLINICS)
    start = start_time()
    programmes = prestart(url, CLINICS, 1000, start)
    with Server("traction", database_url=url, workers=WORKERS, projections=True,
                label=f"p6-{kind}") as server:
        if not has_routes(server, DASHBOARD):
            result.update({"status": "not available yet: the service has no dashboard "
                                     "endpoint", "passes": None})
            write_result(f"p6-{kind}", result)
            drop_store(kind, "p6")
            log(f"  P6: {result['status']}")
            return result
        ready = wait_ready(server)
        result["readyz_before"] = ready
        if not caught_up(ready):
            result.update({
                "status": "error: the projection runner did not catch up with the "
                          f"{len(programmes)} pre-started programmes within 120 s, before "
                          f"any load (see {server.log_path.relative_to(ROOT)})",
                "passes": False})
            write_result(f"p6-{kind}", result)
            log(f"  P6: {result['status']}")
            return result
        use_min_position = "min_position" in route_parameters(server, DASHBOARD)
        seconds = max(8.0, timing.duration * 2)
        config = post_event_config(programmes, tokens["writers"], start, rate=rate)
        ingest: dict[str, Any] = {}

        def load() -> None:
            ingest.update(run_wrk(server.base, config, duration=seconds, label=f"p6-{kind}",
                                  connections=CONNECTIONS))

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(1.0)
        stop = threading.Event()
        readyz: list[Any] = []

        def sample_readyz() -> None:
            while not stop.wait(1.0):
                status, raw, _ = http("GET", server.base + "/readyz", timeout=5)
                try:
                    readyz.append({"status": status, "body": json.loads(raw)})
                except ValueError:
                    readyz.append({"status": status})

        sampler = threading.Thread(target=sample_readyz)
        sampler.start()
        probe_clinic = CLINICS[0]
        probe_programme = next(p for p in programmes if p["clinic_id"] == probe_clinic)
        timer = threading.Timer(seconds - 2, stop.set)
        timer.start()
        lags, problems = probe_lag(server, probe_clinic, probe_programme,
                                   tokens["writers"][probe_clinic],
                                   tokens["viewers"][probe_clinic], event_times(start),
                                   use_min_position, stop)
        loader.join(seconds + 90)
        stop.set()
        sampler.join(10)
        timer.cancel()
    drop_store(kind, "p6")
    p99 = percentile(lags, 99)
    result.update({
        "status": "ok",
        "ingest_rate_target": rate, "ingest": ingest,
        "method": "GET dashboard?min_position=P" if use_min_position
                  else "poll the dashboard's X-Projection-Position every 10 ms",
        "probes": len(lags), "probe_problems": problems[:20],
        "lag_ms": {"p50": percentile(lags, 50), "p90": percentile(lags, 90), "p99": p99,
                   "max": round(max(lags), 1) if lags else None,
                   "mean": round(statistics.mean(lags), 1) if lags else None},
        "readyz_samples": readyz[:60],
        "bars": {"lag_p99_ms_max": 250},
        "passes": p99 is not None and p99 <= 250 and not problems,
        "reproduce": f"python -m bench.lag --store {kind}",
    })
    log(f"  P6 lag p50 {result['lag_ms']['p50']} ms p99 {p99} ms over {len(lags)} probes; "
        f"ingest {ingest.get('requests_per_s')} req/s (target {rate})")
    write_result(f"p6-{kind}", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate", type=float, help="ingest requests/s (default: half of P1's)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    require_wrk()
    result = run_p6(kind, Timing.of(args.quick), args.rate)
    print(f"p6 {kind}: {result['status']} passes {result.get('passes')}")


if __name__ == "__main__":
    main()
