"""Building blocks of the HTTP benchmarks: timing, programmes to post to, paired runs.

A paired run keeps the baseline and our server up side by side (both idle
when not loaded) and alternates the same wrk load between them, round after
round, so that a burst of activity from other processes on this shared
machine does not land on one side only. The figures reported are the
medians over the rounds.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Server, log
from bench.load import run_wrk


@dataclass(frozen=True)
class Timing:
    duration: float  # seconds of each measured wrk run
    warmup: float  # seconds of the discarded run before the first round
    rounds: int  # baseline/ours alternations

    @classmethod
    def of(cls, quick: bool) -> Timing:
        return cls(duration=5, warmup=1, rounds=1) if quick else cls(duration=10, warmup=3,
                                                                    rounds=2)

    def describe(self) -> dict[str, Any]:
        return {"duration_s": self.duration, "warmup_s": self.warmup, "rounds": self.rounds}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, totals of errors, and the runs themselves."""
    if not runs:
        return {}
    return {
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["latency_ms"]["p50"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in runs), 2),
        "max_ms": round(max(r["latency_ms"]["max"] for r in runs), 2),
        "requests": sum(r["requests"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "worker_cpu_share": [r.get("worker_cpu_share") for r in runs],
        # CPU time the workers spent per request (ms), median over rounds.
        "cpu_ms_per_request": round(statistics.median(
            1000 * sum(r.get("worker_cpu_share") or [0]) / r["requests_per_s"]
            for r in runs if r["requests_per_s"]), 2) if any(
            r["requests_per_s"] for r in runs) else None,
        "connections": runs[0]["connections"],
        "threads": runs[0]["threads"],
        "runs": runs,
    }


def paired(baseline: Server | None, ours: Server, baseline_config: dict[str, Any] | None,
           our_config: dict[str, Any], timing: Timing, label: str, *, threads: int = 2,
           connections: int = 32, names: tuple[str, str] = ("baseline", "ours")
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Warm both up, then alternate baseline and ours for timing.rounds rounds."""
    options = {"threads": threads, "connections": connections}
    warmup_requests = 0
    if timing.warmup:
        if baseline is not None and baseline_config is not None:
            run_wrk(baseline.base, baseline_config, duration=timing.warmup,
                    label=f"{label}-{names[0]}-warmup", **options)
        warm = run_wrk(ours.base, our_config, duration=timing.warmup,
                       label=f"{label}-{names[1]}-warmup", **options)
        warmup_requests = warm["requests"]
    base_runs: list[dict[str, Any]] = []
    our_runs: list[dict[str, Any]] = []

    def measured(server: Server, config: dict[str, Any], name: str) -> dict[str, Any]:
        before = server.cpu_seconds()
        run = run_wrk(server.base, config, duration=timing.duration, label=name, **options)
        after = server.cpu_seconds()
        # How busy each worker was: an idle one means the load was not spread.
        run["worker_cpu_share"] = [round((after[pid] - before[pid]) / run["seconds"], 2)
                                   for pid in sorted(after) if pid in before]
        log(f"    workers' CPU (cores): {run['worker_cpu_share']}")
        return run

    for number in range(1, timing.rounds + 1):
        if baseline is not None and baseline_config is not None:
            base_runs.append(measured(baseline, baseline_config,
                                      f"{label}-{names[0]}-{number}"))
        our_runs.append(measured(ours, our_config, f"{label}-{names[1]}-{number}"))
    return summarize(base_runs), {**summarize(our_runs), "warmup_requests": warmup_requests}


# ---- programmes to post to ------------------------------------------------


def start_time() -> datetime:
    """When the pre-started programmes started: 60 days ago, to the second."""
    return (datetime.now(UTC) - timedelta(days=60)).replace(microsecond=0)


def event_times(start: datetime, count: int = 50) -> list[str]:
    """occurred_at values after the start and safely in the past."""
    return [(start + timedelta(days=1 + day, hours=9)).isoformat() for day in range(count)]


def prestart(url: str, clinic_ids: list[str], count: int, start: datetime
             ) -> list[dict[str, str]]:
    """Start `count` programmes spread over the clinics, in a few batched saves
    through the application layer (ProgrammeStarted only)."""
    from bench.dataset import Envelope, record
    from service.bootstrap import open_programmes
    from service.config import Settings

    app = open_programmes(Settings(database_url=url, aggregate_cache_size=0))
    programmes: list[dict[str, str]] = []
    try:
        histories = []
        for number in range(count):
            clinic_id = clinic_ids[number % len(clinic_ids)]
            programme_id = uuid.uuid4()
            histories.append((clinic_id, programme_id, [Envelope(
                uuid.uuid4(), "ProgrammeStarted", start, "bench.writer", {
                    "patient_ref": f"bench-{number:05d}", "condition": "sciatica",
                    "setting": "in_office",
                    "plan": {"modality": "mechanical_table", "sessions_per_week": 3,
                             "minutes_per_session": 30, "force_percent_body_weight": 30.0},
                    "baseline": {"pain_nrs": 7, "odi_percent": 40}})]))
            programmes.append({"clinic_id": clinic_id, "programme_id": str(programme_id)})
        now = datetime.now(UTC)
        for first in range(0, len(histories), 1000):
            record(app, histories[first:first + 1000], now)
    finally:
        app.close()
    log(f"  started {count} programmes over {len(clinic_ids)} clinics")
    return programmes


def post_event_config(programmes: list[dict[str, str]], writers: dict[str, str],
                      start: datetime, **extra: Any) -> dict[str, Any]:
    """wrk configuration: each request one new event to a random programme."""
    return {
        "mode": "post_event",
        "targets": [{"path": f"/v1/clinics/{p['clinic_id']}/programmes/{p['programme_id']}"
                             "/events",
                     "auth": f"Bearer {writers[p['clinic_id']]}"} for p in programmes],
        "times": event_times(start),
        **extra,
    }


def get_config(targets: list[tuple[str, str | None]]) -> dict[str, Any]:
    """wrk configuration: each request a random GET among (path, token) targets."""
    return {"mode": "get",
            "targets": [{"path": path, "auth": f"Bearer {token}" if token else ""}
                        for path, token in targets]}


def has_routes(server: Server, *paths: str) -> bool:
    """Whether the service's OpenAPI document has all these paths (endpoints that
    other work may not have added yet)."""
    import json

    from bench.common import http

    status, body, _ = http("GET", server.base + "/openapi.json")
    if status != 200:
        return False
    known = set(json.loads(body).get("paths", {}))
    return all(path in known for path in paths)


def route_parameters(server: Server, path: str) -> set[str]:
    """The query parameters the OpenAPI document lists for GET path."""
    import json

    from bench.common import http

    status, body, _ = http("GET", server.base + "/openapi.json")
    if status != 200:
        return set()
    operation = json.loads(body).get("paths", {}).get(path, {})
    params = [*operation.get("parameters", []), *operation.get("get", {}).get("parameters", [])]
    return {p.get("name", "") for p in params}
