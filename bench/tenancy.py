"""Between clinics: does another clinic's programme answer in the time a missing one does?

    python -m bench.tenancy [--store sqlite|postgres] [--events 2000] [--rounds 300]

Clinic B records one programme of `--events` events; clinic A's tokens then ask
for it (foreign) and for random programme ids (missing), alternating, on every
path that takes a programme id: its state now, at a version and as of a time,
its history now and at a version, a write with `expected_version`, and a start
(a ProgrammeStarted under one of B's programme ids, answered 201 as under a
fresh id: programme ids are each clinic's own). B's own
reads run first, so that whatever a worker keeps of B's programme in memory is
there (the case where answering from memory could be quicker than asking the
store). The figure is the median time of each, in the real Flask app on a real
store, in this process; the bar: the medians within 1 ms of each other.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import check_store_kind, fresh_store, log, machine, now_iso, write_result
from service.bootstrap import open_components
from service.config import Settings
from service.http.app import create_app

BAR_MS = 1.0
BATCH = 100


def envelope(type_: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": type_, "occurred_at": at.isoformat(),
            "recorded_by": "bench", "data": data}


def start_envelope(at: datetime) -> dict[str, Any]:
    return envelope("ProgrammeStarted", {
        "patient_ref": "pt-0001", "condition": "sciatica", "setting": "in_office",
        "plan": {"modality": "mechanical_table", "sessions_per_week": 3,
                 "minutes_per_session": 30, "force_percent_body_weight": 30},
        "baseline": {"pain_nrs": 7, "odi_percent": 42}}, at)


def record_long_programme(client: Any, writer: dict[str, str], events: int) -> uuid.UUID:
    """B's programme: a start, then pain reports (no rule limits their number)."""
    programme_id = uuid.uuid4()
    first = datetime.now(UTC) - timedelta(days=300)
    posted = [start_envelope(first)]
    for n in range(1, events):
        posted.append(envelope("PainReported", {"pain_nrs": n % 10},
                               first + timedelta(minutes=n)))
    for at in range(0, events, BATCH):
        response = client.post(f"/v1/clinics/clinic-b/programmes/{programme_id}/events",
                               json={"events": posted[at:at + BATCH]}, headers=writer)
        assert response.status_code == 201, response.json
    return programme_id


def timed(call: Any, programme_id: uuid.UUID) -> tuple[float, int]:
    started = time.perf_counter()
    status = call(programme_id).status_code
    return (time.perf_counter() - started) * 1000, status


def measure(kind: str, events: int, rounds: int) -> dict[str, Any]:
    url = fresh_store(kind, "tenancy")
    components = open_components(Settings(database_url=url))
    try:
        directory = components.directory
        for clinic in ("clinic-a", "clinic-b"):
            directory.add_clinic(clinic, clinic.title())
        headers = {role + clinic[-2:]: {"Authorization": "Bearer " + directory.issue_token(
            role, clinic, "bench")[1]} for role in ("writer", "viewer")
            for clinic in ("clinic-a", "clinic-b")}
        client = create_app(components).test_client()
        log(f"{kind}: recording B's programme of {events} events")
        foreign = record_long_programme(client, headers["writer-b"], events)
        now = datetime.now(UTC).isoformat().replace("+", "%2B")
        paths = {"state": "", "state ?version": f"?version={events - 7}",
                 "state ?as_of": f"?as_of={now}", "history": "/events",
                 "history ?version": f"/events?version={events - 7}"}
        for query in paths.values():  # B reads its own: the worker keeps what it keeps
            client.get(f"/v1/clinics/clinic-b/programmes/{foreign}{query}",
                       headers=headers["viewer-b"])

        def read(query: str) -> Any:
            return lambda programme_id: client.get(
                f"/v1/clinics/clinic-a/programmes/{programme_id}{query}",
                headers=headers["viewer-a"])

        def write(programme_id: uuid.UUID) -> Any:
            return client.post(
                f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                json={"events": [envelope("SessionMissed", {"reason": "schedule"},
                                          datetime.now(UTC) - timedelta(hours=1))],
                      "expected_version": events}, headers=headers["writer-a"])

        def start(programme_id: uuid.UUID) -> Any:
            return client.post(
                f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                json={"events": [start_envelope(datetime.now(UTC) - timedelta(hours=1))]},
                headers=headers["writer-a"])

        # A start takes an id once: B holds a programme for each round's.
        log(f"{kind}: recording {rounds} programmes of B for the starts")
        taken = []
        for _ in range(rounds):
            taken.append(uuid.uuid4())
            assert client.post(f"/v1/clinics/clinic-b/programmes/{taken[-1]}/events",
                               json={"events": [start_envelope(datetime.now(UTC))]},
                               headers=headers["writer-b"]).status_code == 201
        cases = {name: (read(query), itertools.repeat(foreign))
                 for name, query in paths.items()}
        cases["write, expected_version"] = (write, itertools.repeat(foreign))
        cases["start"] = (start, iter(taken))
        rows = {}
        for name, (call, foreign_ids) in cases.items():
            times: dict[str, list[float]] = {"foreign": [], "missing": []}
            statuses: dict[str, set[int]] = {"foreign": set(), "missing": set()}
            for _ in range(rounds):
                for which, programme_id in (("foreign", next(foreign_ids)),
                                            ("missing", uuid.uuid4())):
                    ms, status = timed(call, programme_id)
                    times[which].append(ms)
                    statuses[which].add(status)
            foreign_ms = statistics.median(times["foreign"])
            missing_ms = statistics.median(times["missing"])
            rows[name] = {"foreign_median_ms": round(foreign_ms, 3),
                          "missing_median_ms": round(missing_ms, 3),
                          "difference_ms": round(foreign_ms - missing_ms, 3),
                          "statuses": {k: sorted(v) for k, v in statuses.items()},
                          "pass": abs(foreign_ms - missing_ms) <= BAR_MS
                          and statuses["foreign"] == statuses["missing"]}
            log(f"{kind:8} {name:24} foreign {foreign_ms:7.3f} ms  missing "
                f"{missing_ms:7.3f} ms  difference {foreign_ms - missing_ms:+.3f} ms  "
                f"statuses {rows[name]['statuses']}  "
                f"{'pass' if rows[name]['pass'] else 'FAIL'}")
        return rows
    finally:
        components.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", type=check_store_kind)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=300)
    arguments = parser.parse_args()
    for kind in arguments.store or ["sqlite", "postgres"]:
        rows = measure(kind, arguments.events, arguments.rounds)
        path = write_result(f"tenancy-{kind}", {
            "id": "tenancy", "store": kind, "date": now_iso(), "machine": machine(),
            "events": arguments.events, "rounds": arguments.rounds, "bar_ms": BAR_MS,
            "paths": rows})
        log(f"{kind}: written {path}")


if __name__ == "__main__":
    main()
