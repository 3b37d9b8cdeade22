"""P1 (single-event ingest), P2 (100-event batch ingest), each against its
baseline, and P12 (CPU per single-event POST).

    python -m bench.ingest --store sqlite|postgres [--only p1|p2|p12] [--quick]

P1: wrk (-t2 -c32) posts ONE new event per request (fresh event_id) to 1,000
pre-started programmes over 20 clinics, through `traction serve
--no-projections`; the baseline is bench/baseline_app.py under the same
gunicorn settings and worker count, parsing the same JSON and answering 201.
Bars: >= 0.5 of the baseline's requests/s, p99 <= 50 ms.

P2: wrk (-t2 -c4) posts batches of 100 events, each request a new programme
(ProgrammeStarted + 99 sessions and pain reports); the baseline is the
eventsourcing library alone: a bare Aggregate with the same events, one
plain `Application.save` per 100-event batch, on the same kind of store, no
HTTP. Bars: >= 0.5 of the baseline's events/s, >= 5,000 events/s on PostgreSQL.

P12: P1's load again, for the CPU time (user + system, from /proc) the
gunicorn workers spend per request; beside it the trivial app's under the same
load, and ours in one process with no HTTP server (bench/profile_cpu.py's
measure). Bar: <= 1.2 ms per request (absolute: read it with the load average
and the trivial app's figure, which say how busy the machine was).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import (
    DATA,
    PG_PREFIX,
    Server,
    check_store_kind,
    drop_store,
    fresh_store,
    log,
    machine,
    median_rate,
    now_iso,
    pg_admin,
    ratio,
    register,
    store_url,
    write_result,
)
from bench.dataset import CLINICS, store_head
from bench.load import require_wrk, run_wrk
from bench.scenario import Timing, event_times, paired, post_event_config, prestart, start_time

WORKERS = 2
P1_PROGRAMMES = 1_000
P1_CONNECTIONS = 32
P2_BATCH = 100
P2_CONNECTIONS = 4


def result_base(name: str, kind: str, timing: Timing) -> dict[str, Any]:
    return {"benchmark": name, "store": kind, "measured_at": now_iso(), "machine": machine(),
            "timing": timing.describe(), "workers": WORKERS, "notes": []}


# ---- P1 -----------------------------------------------------------------------


def p1_ours(url: str, writers: dict[str, str], timing: Timing, label: str,
            baseline: Server | None = None) -> tuple[dict[str, Any], dict[str, Any], dict]:
    """P1's load on our server over the store at url (and on `baseline` if given,
    alternating). Returns (baseline figures, our figures, extra facts)."""
    start = start_time()
    programmes = prestart(url, sorted(writers), P1_PROGRAMMES, start)
    config = post_event_config(programmes, writers, start)
    head_before = store_head(url)
    with Server("traction", database_url=url, workers=WORKERS, label=label) as ours:
        base, mine = paired(baseline, ours, config if baseline else None, config, timing, label,
                            connections=P1_CONNECTIONS)
        rss = ours.rss()
        notes = list(ours.notes)
    extra = {"stored_events": store_head(url) - head_before, "programmes": P1_PROGRAMMES,
             "worker_rss": rss, "notes": notes}
    return base, mine, extra


def run_p1(kind: str, timing: Timing) -> dict[str, Any]:
    log(f"P1 single-event ingest on {kind}")
    result = result_base("P1 single-event ingest", kind, timing)
    url = fresh_store(kind, "p1")
    tokens = register(url, CLINICS)
    with Server("baseline", workers=WORKERS, label=f"p1-{kind}-baseline") as baseline:
        base, ours, extra = p1_ours(url, tokens["writers"], timing, f"p1-{kind}", baseline)
    result["notes"] += extra.pop("notes")
    rps_ratio = ratio(ours["requests_per_s"], base["requests_per_s"])
    passes = (rps_ratio is not None and rps_ratio >= 0.5 and ours["p99_ms"] <= 50
              and ours["non_2xx"] == 0)
    result.update({
        "status": "ok",
        "load": f"wrk -t2 -c{P1_CONNECTIONS}, one new event per request, "
                f"{P1_PROGRAMMES} programmes over {len(CLINICS)} clinics",
        "baseline_what": "trivial Flask app parsing the same JSON, 201, same gunicorn settings",
        "baseline": base, "ours": ours, **extra,
        "ratio": rps_ratio, "p99_ms": ours["p99_ms"],
        "bars": {"ratio_min": 0.5, "p99_ms_max": 50}, "passes": passes,
        "reproduce": f"python -m bench.ingest --store {kind} --only p1",
    })
    write_result(f"p1-{kind}", result)
    drop_store(kind, "p1")
    return result


# ---- P12 ----------------------------------------------------------------------


def run_p12(kind: str, timing: Timing) -> dict[str, Any]:
    """P12: the CPU the workers spend per single-event POST under P1's load (and,
    beside it, the trivial app's, and ours in one process without HTTP)."""
    log(f"P12 CPU per single-event POST on {kind}")
    result = result_base("P12 CPU per single-event POST", kind, timing)
    url = fresh_store(kind, "p12")
    tokens = register(url, CLINICS)
    with Server("baseline", workers=WORKERS, label=f"p12-{kind}-baseline") as baseline:
        base, ours, extra = p1_ours(url, tokens["writers"], timing, f"p12-{kind}", baseline)
    drop_store(kind, "p12")
    result["notes"] += extra.pop("notes")
    in_process = in_process_cpu(kind)
    cpu = ours["cpu_ms_per_request"]
    result.update({
        "status": "ok",
        "load": f"P1's: wrk -t2 -c{P1_CONNECTIONS}, one new event per request",
        "baseline_what": "the trivial Flask app's CPU per request under the same load "
                         "(for scale: the bar is absolute)",
        "baseline": base, "ours": ours, **extra,
        "cpu_ms_per_request": cpu, "baseline_cpu_ms_per_request": base["cpu_ms_per_request"],
        "in_process_cpu_ms_per_request": in_process,
        "bars": {"cpu_ms_per_request_max": 1.2},
        "passes": cpu is not None and cpu <= 1.2 and ours["non_2xx"] == 0,
        "reproduce": f"python -m bench.ingest --store {kind} --only p12",
    })
    write_result(f"p12-{kind}", result)
    return result


def in_process_cpu(kind: str) -> float:
    """ms of CPU per single-event POST through the app in this process, no HTTP
    server (bench/profile_cpu.py's measure, without the profiler)."""
    from bench.profile_cpu import Scenario, requests_for

    url = fresh_store(kind, "p12cpu")
    scenario = Scenario(url)
    try:
        request = requests_for("P1 one event", scenario)
        warm = [request(n) for n in range(100)]
        timed = [request(100 + n) for n in range(400)]
        for environ in warm:
            scenario.run(environ)
        began = time.process_time()
        for environ in timed:
            scenario.run(environ)
        return round((time.process_time() - began) / len(timed) * 1000, 3)
    finally:
        scenario.close()
        drop_store(kind, "p12cpu")


# ---- P2 -----------------------------------------------------------------------


class BareProgramme(Aggregate):
    """The P2 baseline's aggregate: the same events, no rules, no ledger."""

    @event("ProgrammeStarted")
    def __init__(self, event_id: uuid.UUID, occurred_at: datetime, recorded_by: str,
                 data: dict[str, Any]) -> None:
        self.sessions = 0

    @event("SessionCompleted")
    def complete_session(self, event_id: uuid.UUID, occurred_at: datetime, recorded_by: str,
                         data: dict[str, Any]) -> None:
        self.sessions += 1

    @event("PainReported")
    def report_pain(self, event_id: uuid.UUID, occurred_at: datetime, recorded_by: str,
                    data: dict[str, Any]) -> None:
        pass


STARTED_DATA = {"patient_ref": "pt-bench", "condition": "sciatica", "setting": "in_office",
                "plan": {"modality": "mechanical_table", "sessions_per_week": 3,
                         "minutes_per_session": 30, "force_percent_body_weight": 30.0},
                "baseline": {"pain_nrs": 7, "odi_percent": 40}}


def library_env(kind: str, name: str) -> dict[str, str]:
    """A plain eventsourcing Application's settings for a fresh store of this kind."""
    from service.storage.stores import parse_database_url

    drop_store(kind, name)
    if kind == "sqlite":
        (DATA / "stores").mkdir(parents=True, exist_ok=True)
        path = parse_database_url(store_url(kind, name)).sqlite_path
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
                "CREATE_TABLE": "y"}
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{PG_PREFIX}{name}"')
    store = parse_database_url(store_url(kind, name))
    return {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": store.pg_dbname,
            "POSTGRES_HOST": store.pg_host, "POSTGRES_PORT": str(store.pg_port),
            "POSTGRES_USER": store.pg_user, "POSTGRES_PASSWORD": store.pg_password,
            "CREATE_TABLE": "y"}


def library_baseline(kind: str, seconds: float, store: str = "p2lib") -> dict[str, Any]:
    """The library alone: new aggregates of 100 events, one save each, for `seconds`
    (on a store of its own, named `store`)."""
    start = start_time()
    times = [datetime.fromisoformat(t) for t in event_times(start)]
    app: Application[uuid.UUID] = Application(env=library_env(kind, store))
    try:
        saves = events = 0
        save_seconds = 0.0
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            programme = BareProgramme(uuid.uuid4(), start, "bench.writer", STARTED_DATA)
            for n in range(2, P2_BATCH + 1):
                when = times[n % len(times)]
                if n % 3 == 2:
                    programme.report_pain(uuid.uuid4(), when, "bench.writer",
                                          {"pain_nrs": n % 11, "context": "after_session"})
                else:
                    programme.complete_session(uuid.uuid4(), when, "bench.writer", {
                        "modality": "mechanical_table", "duration_minutes": 30,
                        "supervised": True, "force_percent_body_weight": 30.0,
                        "discomfort_nrs": n % 7})
            saving = time.perf_counter()
            app.save(programme)
            save_seconds += time.perf_counter() - saving
            saves += 1
            events += P2_BATCH
        elapsed = time.perf_counter() - began
    finally:
        app.close()
        drop_store(kind, store)
    figures = {"events": events, "saves": saves, "seconds": round(elapsed, 2),
               "events_per_s": round(events / elapsed), "save_only_events_per_s":
               round(events / save_seconds) if save_seconds else None}
    log(f"  p2 library alone: {figures['events_per_s']:,} events/s "
        f"({figures['save_only_events_per_s']:,} counting only save())")
    return figures


def run_p2(kind: str, timing: Timing) -> dict[str, Any]:
    log(f"P2 batch ingest (100 events per request) on {kind}")
    result = result_base("P2 batch ingest, 100 events per request", kind, timing)
    start = start_time()
    base_runs = []
    our_runs = []
    url = fresh_store(kind, "p2")
    tokens = register(url, CLINICS)
    config = {"mode": "post_batch", "batch": P2_BATCH, "start": start.isoformat(),
              "times": event_times(start),
              "targets": [{"path": f"/v1/clinics/{c}/programmes/",
                           "auth": f"Bearer {tokens['writers'][c]}"} for c in CLINICS]}
    options = {"threads": 2, "connections": P2_CONNECTIONS}
    with Server("traction", database_url=url, workers=WORKERS, label=f"p2-{kind}") as ours:
        result["notes"] += ours.notes
        run_wrk(ours.base, config, duration=max(1, timing.warmup), label=f"p2-{kind}-warmup",
                **options)
        for number in range(1, timing.rounds + 1):
            base_runs.append(library_baseline(kind, timing.duration))
            head = store_head(url)
            run = run_wrk(ours.base, config, duration=timing.duration,
                          label=f"p2-{kind}-ours-{number}", **options)
            run["events_stored"] = store_head(url) - head
            run["events_per_s"] = round(run["events_stored"] / run["seconds"])
            log(f"  p2 ours: {run['events_per_s']:,} events/s stored")
            our_runs.append(run)
    drop_store(kind, "p2")
    base_rate = median_rate(base_runs)
    our_rate = median_rate(our_runs)
    rate_ratio = ratio(our_rate, base_rate)
    floor = 5_000 if kind == "postgres" else None
    passes = (rate_ratio is not None and rate_ratio >= 0.5
              and (floor is None or our_rate >= floor)
              and all(r["non_2xx"] == 0 for r in our_runs))
    result.update({
        "status": "ok",
        "load": f"wrk -t2 -c{P2_CONNECTIONS}, each request a new programme with "
                f"{P2_BATCH} events",
        "baseline_what": "eventsourcing alone: bare Aggregate, Application.save per "
                         f"{P2_BATCH}-event batch, same store kind, no HTTP, one thread",
        "baseline": {"events_per_s": base_rate, "runs": base_runs},
        "ours": {"events_per_s": our_rate,
                 "requests_per_s": sorted(r["requests_per_s"] for r in our_runs)[
                     len(our_runs) // 2],
                 "p99_ms": sorted(r["latency_ms"]["p99"] for r in our_runs)[len(our_runs) // 2],
                 "non_2xx": sum(r["non_2xx"] for r in our_runs), "runs": our_runs},
        "ratio": rate_ratio,
        "bars": {"ratio_min": 0.5, "events_per_s_min": floor}, "passes": passes,
        "reproduce": f"python -m bench.ingest --store {kind} --only p2",
    })
    write_result(f"p2-{kind}", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--only", choices=("p1", "p2", "p12"))
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    require_wrk()
    timing = Timing.of(args.quick)
    for name, run in (("p1", run_p1), ("p2", run_p2), ("p12", run_p12)):
        if args.only in (None, name):
            result = run(kind, timing)
            print(f"{name} {kind}: ratio {result.get('ratio')} "
                  f"cpu {result.get('cpu_ms_per_request')} passes {result['passes']}")


if __name__ == "__main__":
    main()
