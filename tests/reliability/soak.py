"""The long versions of the reliability tests (RELIABILITY.md: R1-R4, R8): `make soak`.

    python -m tests.reliability.soak [--stores sqlite,postgres] [--seconds 300]

For each store, on a fresh SQLite file or PostgreSQL schema, within
`--seconds` (SOAK_SECONDS, default 300) split between the phases:

- R1  sustained ingest over HTTP, gunicorn workers SIGKILLed every ~0.5 s;
      then every acknowledged event is stored once, positions and versions are
      gap-free, and the integrity chain verifies;
- R2  rounds of 32 clients on one programme with expected_version, and of the
      same post sent by 32 clients at once;
- R3  schemathesis against the live server's /openapi.json, all checks;
- R4  the programme state machine, many more examples than in CI;
- R8  every hostile body, round after round, and stalled uploads.

Loopback only, bounded in time and count. Prints a summary per store and writes
it as JSON to var/soak-<store>.json (SOAK_REPORT_DIR to change). Exits 1 if
anything was lost, doubled or wrong. PostgreSQL comes from
TRACTION_TEST_POSTGRES_URL (`make soak` gets a throwaway database from
.ci/with-test-postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.reliability import fuzzing, invariants
from tests.reliability.contention import (
    programme_path,
    race_on_one_programme,
    same_post_in_parallel,
    start_programme,
)
from tests.reliability.hostile import (
    hostile_cases,
    problem_mismatch,
    send_case,
    stalled_uploads,
    valid_post_path,
)
from tests.reliability.ingest import CHECKS_AFTER_CRASHES, ingest_under_kills
from tests.reliability.live import (
    Answer,
    LiveServer,
    Tokens,
    bootstrap,
    live_service,
    request,
)
from tests.reliability.programme_machine import machine_on
from tests.stores import throwaway_postgres_schema

#: Each phase's share of the store's time.
SHARES = {"R1": 0.30, "R2": 0.08, "R3": 0.45, "R4": 0.05, "R8": 0.12}
#: Examples per run of the state machine (runs repeat until the phase's time is up).
R4_EXAMPLES = 25


@contextmanager
def fresh_store(kind: str, memory: bool = False) -> Iterator[str]:
    """A new SQLite file (on tmpfs if `memory` and there is one), or PostgreSQL schema."""
    if kind == "sqlite":
        base = "/dev/shm" if memory and os.path.isdir("/dev/shm") else None
        directory = tempfile.mkdtemp(prefix="traction-soak-", dir=base)
        try:
            yield f"sqlite:///{directory}/ledger.sqlite"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    base = os.environ.get("TRACTION_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit("the PostgreSQL soak needs TRACTION_TEST_POSTGRES_URL (make soak sets it)")
    with throwaway_postgres_schema(base, prefix="soak") as url:
        yield url


def r1_crashes(seconds: float, kind: str) -> dict[str, Any]:
    with fresh_store(kind) as url, live_service(url, workers=3) as (server, tokens):
        report = ingest_under_kills(server, tokens, seconds=seconds, clients=8,
                                    programmes_per_client=25, seed=random.randrange(1 << 30))
        server.wait_until_serving()
        log = invariants.read_stored_log(url)
        stored = log.by_event_id()
        acknowledged_ids = {item["event_id"] for r in report.receipts for item in r["recorded"]}
        lost = sum(1 for event_id in acknowledged_ids if event_id not in stored)
        acknowledged = report.acknowledged_events
        verify = request(server.port, "GET", "/v1/audit/verify", token=tokens.auditor).body
        errors_logged = server.errors_logged()
        failures = list(report.failures)
        for check in CHECKS_AFTER_CRASHES:
            try:
                check(url, server, tokens, report)
            except AssertionError as error:
                failures.append(f"{check.__name__}: {str(error)[:1000]}")
        result = {
            "seconds": round(report.seconds, 1), "workers_killed": report.kills,
            "posts": report.posts, "statuses": dict(report.statuses),
            "posts_cut_off_and_retried": report.connection_errors,
            "replayed_200_after_retry": report.replays_after_retry,
            "events_acknowledged": acknowledged, "events_stored": len(log.ledger),
            "programmes": len({e.programme_id for e in log.ledger}),
            "lost": lost,
            "doubled": len(log.ledger) - len({e.event_id for e in log.ledger}),
            "stored_but_never_acknowledged": len(log.ledger) - acknowledged,
            # The soak's server has no checkpoint key: the chain holding is the verdict.
            "chain_verified": verify.get("failure") is None and "events_checked" in verify,
            "chain_events_checked": verify.get("events_checked"),
            "server_errors_logged": dict(errors_logged.most_common(10)),
            "failures": failures[:10],
        }
        if failures:
            raise PhaseFailed({"ok": False, **result}, server)
        return {"ok": True, **result}


def r2_contention(seconds: float, server: LiveServer, tokens: Tokens, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    rounds = Counter()
    failures: list[str] = []
    events = 0
    while time.monotonic() < deadline:
        programme_id, report = race_on_one_programme(server, tokens, clients=32, each=2)
        rounds["race_32_clients"] += 1
        events += report.statuses[201]
        failures += report.failures
        if report.statuses[201] != 64:
            failures.append(f"race {programme_id}: {report.statuses}")
        for kind in ("new", "existing"):
            programme_id = uuid.uuid4()
            body = {"events": [b.started(), b.session(1)]}
            if kind == "existing":
                programme_id, _ = start_programme(server, tokens)
                body = {"events": [b.session(1), b.adverse("severe", 2)]}
            answers = same_post_in_parallel(server, tokens,
                                            programme_path(programme_id) + "/events", body)
            rounds[f"same_post_32_clients_{kind}"] += 1
            statuses = sorted(a.status for a in answers)
            if statuses != [200] * 31 + [201] or len({a.raw for a in answers}) != 1:
                failures.append(f"same post {programme_id}: {Counter(statuses)}")
    log = invariants.read_stored_log(url)
    invariants.check_log_shape(log)
    return {"ok": not failures, "rounds": dict(rounds), "race_events_recorded": events,
            "failures": failures[:10]}


def r3_fuzz(seconds: float, server: LiveServer, tokens: Tokens, url: str) -> dict[str, Any]:
    programme_ids = []
    for _ in range(5):
        programme_id, _ = start_programme(server, tokens)
        programme_ids.append(str(programme_id))
    database = Database(parse_database_url(url))
    try:
        directory = Directory(database)
        spare = [directory.issue_token("viewer", "clinic-a", "spare")[0].token_id
                 for _ in range(20)]
    finally:
        database.close()
    known = fuzzing.Known("clinic-a", programme_ids, spare, {
        "writer": f"Bearer {tokens.writer['clinic-a']}", "viewer": f"Bearer {tokens.viewer_all}",
        "auditor": f"Bearer {tokens.auditor}", "admin": f"Bearer {tokens.admin}",
    })
    deadline = time.monotonic() + seconds
    total = FuzzTotals()
    while time.monotonic() < deadline:
        # Short passes (~300 cases each), so the phase ends close to its time.
        schema = fuzzing.load_url(f"http://127.0.0.1:{server.port}")
        report = fuzzing.fuzz(schema, known, max_examples=10, seed=None)
        total.add(report)
    return {"ok": not total.failures, "cases": total.cases, "by_status": dict(total.statuses),
            "operations": len(total.operations),
            "refused_by_gunicorn_before_the_app": total.refused_by_gunicorn,
            "failures": total.failures[:10]}


class FuzzTotals:
    def __init__(self) -> None:
        self.cases = 0
        self.statuses: Counter = Counter()
        self.operations: set[str] = set()
        self.failures: list[str] = []
        self.refused_by_gunicorn = 0

    def add(self, report: fuzzing.FuzzReport) -> None:
        self.cases += report.total
        self.refused_by_gunicorn += report.refused_by_gunicorn
        for (operation, status), count in report.cases.items():
            self.statuses[status] += count
            self.operations.add(operation)
        self.failures += [f"{k}: {v}" for k, v in report.failures.items()]


def r4_machine(seconds: float, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    runs = 0
    failures: list[str] = []
    with fresh_store(kind, memory=True) as url:
        machine = machine_on(url)
        while time.monotonic() < deadline:
            try:
                run_state_machine_as_test(machine, settings=settings(
                    max_examples=R4_EXAMPLES, stateful_step_count=40, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck)))
            except Exception:
                failures.append(traceback.format_exc()[-3000:])
                break
            runs += 1
    return {"ok": not failures, "machine_runs": runs, "examples": runs * R4_EXAMPLES,
            "steps_at_most": runs * R4_EXAMPLES * 40, "failures": failures}


def r8_hostile(seconds: float, server: LiveServer, tokens: Tokens) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    token = tokens.writer["clinic-a"]
    path, start = valid_post_path()
    assert request(server.port, "POST", path, start, token).status == 201
    workers = server.worker_pids()
    sent = 0
    failures: list[str] = []
    # Twice as many stalled uploads as the workers have threads: two waves of 408s.
    stalled, normal, answered_after = stalled_uploads(server.port, token, stalls=16)
    if normal.status != 201 or any(not isinstance(a, Answer) or a.status != 408
                                   for a in stalled):
        failures.append(f"stalled uploads: normal {normal.status}, stalled {stalled}")
    cases = hostile_cases()
    while time.monotonic() < deadline:
        for case in cases:
            answer = send_case(server.port, path, token, case)
            sent += 1
            wrong = problem_mismatch(case, answer)
            if wrong:
                failures.append(f"{case.name}: {wrong}")
        normal_path, normal = valid_post_path()
        if request(server.port, "POST", normal_path, normal, token).status != 201:
            failures.append("a normal post failed after a round of hostile ones")
    state = request(server.port, "GET", path.removesuffix("/events"), token=token).body
    if state["version"] != 1:
        failures.append(f"hostile posts recorded something: version {state['version']}")
    if server.worker_pids() != workers:
        failures.append("a worker died during the hostile rounds")
    return {"ok": not failures, "hostile_requests": sent, "kinds": len(cases),
            "stalled_uploads_refused_408": sum(isinstance(a, Answer) and a.status == 408
                                               for a in stalled),
            "normal_post_during_stalls_answered_after_s": round(answered_after, 1),
            "failures": failures[:10]}


def soak_store(kind: str, seconds: float) -> dict[str, Any]:
    budget = {phase: seconds * share for phase, share in SHARES.items()}
    results: dict[str, Any] = {"store": kind, "seconds": seconds,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    phases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("R1", lambda: r1_crashes(budget["R1"], kind)),
        ("R4", lambda: r4_machine(budget["R4"], kind)),
    ]
    for name, phase in phases:
        results[name] = run_phase(name, phase)
    with fresh_store(kind) as url:
        tokens = bootstrap(url)
        server = LiveServer(url, workers=2)
        try:
            results["R2"] = run_phase("R2", lambda: r2_contention(budget["R2"], server,
                                                                   tokens, url))
            results["R3"] = run_phase("R3", lambda: r3_fuzz(budget["R3"], server, tokens, url))
            results["R8"] = run_phase("R8", lambda: r8_hostile(budget["R8"], server, tokens))
        finally:
            server.stop()
            results["server_errors_logged_in_R2_R3_R8"] = dict(
                server.errors_logged().most_common(10))
            if all(results.get(p, {}).get("ok") for p in ("R2", "R3", "R8")):
                server.remove_log()
            else:
                results["server_log_of_R2_R3_R8"] = str(server.log_path)
    results["ok"] = all(results[p]["ok"] for p in SHARES)
    return results


class PhaseFailed(Exception):
    """A phase's results when they are not all good (its server's log is kept)."""

    def __init__(self, result: dict[str, Any], server: LiveServer) -> None:
        super().__init__("phase failed")
        self.result = {**result, "server_log": str(server.log_path)}


def run_phase(name: str, phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    began = time.monotonic()
    print(f"  {name} ...", flush=True)
    try:
        result = phase()
    except PhaseFailed as failed:
        result = failed.result
    except Exception:
        result = {"ok": False, "failures": [traceback.format_exc()[-3000:]]}
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    print(f"  {name} {'ok' if result['ok'] else 'FAILED'}: "
          + json.dumps({k: v for k, v in result.items() if k != "failures"}), flush=True)
    for failure in result.get("failures", []):
        print(f"    ! {failure}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default=os.environ.get("SOAK_STORES", "sqlite,postgres"))
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("SOAK_SECONDS", "300")),
                        help="time per store (default SOAK_SECONDS or 300)")
    args = parser.parse_args(argv)
    if not 10 <= args.seconds <= 6 * 3600:
        parser.error("--seconds must be between 10 and 21600")
    report_dir = Path(os.environ.get("SOAK_REPORT_DIR", "var"))
    report_dir.mkdir(parents=True, exist_ok=True)
    ok = True
    for kind in args.stores.split(","):
        print(f"soak on {kind} for {args.seconds:g} s", flush=True)
        results = soak_store(kind.strip(), args.seconds)
        (report_dir / f"soak-{kind}.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"soak on {kind}: {'ok' if results['ok'] else 'FAILED'}", flush=True)
        ok = ok and results["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
