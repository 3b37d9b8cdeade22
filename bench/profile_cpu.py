"""Where each benchmark's request CPU goes, by layer (cProfile, in one process).

    python -m bench.profile_cpu [--store sqlite|postgres] [--requests 400]

The bars that fail are CPU-bound: on two shared cores our workers spend more
CPU per request than the baselines (BENCHMARKS.md, "ms CPU/req"). This says
on what. For each request of P1 (one event), P2 (a 100-event batch), P4 (a
dashboard or a summary, alternating) and P5 (a 200-event history, a
`?version=` replay) it drives the real Flask app in this process (Flask's
test client: no HTTP server, so gunicorn's share is not here) against a
fresh store, then:

- measures CPU per request without the profiler (`time.process_time`), and
- profiles the same requests with cProfile and adds up each function's own
  time by the layer its file belongs to (our code, marshmallow + webargs +
  flask-smorest, Flask + Werkzeug, the eventsourcing library, the database
  driver, json, the rest), as shares of the profiled time;
  a built-in's or a stdlib function's time counts for the layer that called
  it.

Writes bench/results/cpu-profile-<store>.json; bench/report.py puts the
table in BENCHMARKS.md. Profiling inflates small calls, so the shares are a
guide to where the time goes, not exact costs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import check_store_kind, drop_store, fresh_store, log, now_iso, write_result
from projections.runner import ProjectionRunner

#: Layers by where a function's file lives (first match wins).
LAYERS = (
    ("our code", ("/domain/", "/service/", "/projections/")),
    ("validation: marshmallow, webargs, flask-smorest",
     ("/marshmallow/", "/webargs/", "/flask_smorest/", "/apispec/")),
    ("Flask + Werkzeug (request handling)", ("/flask/", "/werkzeug/")),
    ("eventsourcing library", ("/eventsourcing/",)),
    ("database driver (sqlite3, psycopg)", ("/psycopg", "sqlite3", "_sqlite3")),
    ("json", ("/json/", "_json")),
    ("prometheus_client + logging", ("/prometheus_client/", "/logging/")),
    ("uuid, datetime, copy, typing, threading", ("/uuid.py", "/copy.py", "/typing.py",
                                                 "/threading.py", "datetime")),
)
OTHER = "other (interpreter built-ins, stdlib)"


def layer_of(filename: str, function: str) -> str:
    where = f"{filename} {function}"
    for name, needles in LAYERS:
        if any(needle in where for needle in needles):
            return name
    return OTHER


def by_layer(profile: cProfile.Profile) -> list[dict[str, Any]]:
    """Own time summed by layer; a built-in's or stdlib function's own time goes
    to the layer of whoever called it (isinstance() in marshmallow is validation)."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, own, _cum, callers) in stats.items():
        layer = layer_of(filename, function)
        if layer != OTHER or not callers:
            totals[layer] = totals.get(layer, 0.0) + own
            continue
        for (caller_file, _caller_line, caller_function), timing in callers.items():
            caller_layer = layer_of(caller_file, caller_function)
            totals[caller_layer] = totals.get(caller_layer, 0.0) + timing[2]
    whole = sum(totals.values()) or 1.0
    return [{"layer": name, "share_pct": round(100 * seconds / whole, 1)}
            for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]


class Scenario:
    """The real app on a fresh store, with a writer's and a viewer's token.

    Requests are WSGI environs built beforehand and passed to the app as
    gunicorn would: neither building them nor the test client is measured."""

    def __init__(self, url: str) -> None:
        from service.bootstrap import open_components
        from service.config import Settings
        from service.http.app import create_app

        self.components = open_components(Settings(database_url=url))
        self.app = create_app(self.components)
        directory = self.components.directory
        directory.add_clinic("clinic-a", "Bench clinic A")
        self.writer = {"Authorization": "Bearer "
                       + directory.issue_token("writer", "clinic-a", "profile")[1]}
        self.viewer = {"Authorization": "Bearer "
                       + directory.issue_token("viewer", "clinic-a", "profile")[1]}
        self.rng = random.Random(7)

    def close(self) -> None:
        self.components.close()

    def post(self, programme_id: str, body: Any) -> dict[str, Any]:
        from werkzeug.test import EnvironBuilder

        return EnvironBuilder(path=f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                              method="POST", json=body, headers=self.writer).get_environ()

    def get(self, path: str) -> dict[str, Any]:
        from werkzeug.test import EnvironBuilder

        query = path.split("?", 1)[1] if "?" in path else ""
        return EnvironBuilder(path=path.split("?", 1)[0], query_string=query,
                              headers=self.viewer).get_environ()

    def run(self, environ: dict[str, Any]) -> None:
        """One request through the WSGI app, as gunicorn calls it."""
        statuses: list[str] = []
        body = b"".join(self.app(environ, lambda status, *_: statuses.append(status)))
        if not statuses[0].startswith("20"):
            raise RuntimeError(f"{environ['PATH_INFO']}: {statuses[0]} {body[:300]!r}")

    def new_programme(self, events: int) -> str:
        programme_id = str(uuid.uuid4())
        for environ in self.programme_posts(programme_id, events):
            self.run(environ)
        return programme_id

    def programme_posts(self, programme_id: str, events: int) -> list[dict[str, Any]]:
        from bench.reads import programme_batches

        return [self.post(programme_id, {"events": batch})
                for batch in programme_batches(self.rng, events)]


def requests_for(name: str, scenario: Scenario) -> Callable[[int], dict[str, Any]]:
    """Set up the store for one scenario; returns the environ of request n."""
    from bench.reads import programme_batches

    base = "/v1/clinics/clinic-a/programmes"
    if name == "P1 one event":
        programmes = [scenario.new_programme(1) for _ in range(100)]

        def one_event(n: int) -> dict[str, Any]:
            start, session = programme_batches(scenario.rng, 2)[0]
            session["occurred_at"] = start["occurred_at"]  # never before the start
            session["event_id"] = str(uuid.UUID(int=n + 1, version=4))
            return scenario.post(programmes[n % len(programmes)], session)
        return one_event
    if name == "P2 100-event batch":
        return lambda n: scenario.programme_posts(str(uuid.uuid4()), 100)[0]
    if name == "P4 dashboard / summary":
        programmes = [scenario.new_programme(100) for _ in range(20)]
        parts = scenario.components
        ProjectionRunner(parts.programmes, parts.read_models, parts.store).run(once=True)
        return lambda n: scenario.get("/v1/clinics/clinic-a/dashboard" if n % 2
                                      else f"{base}/{programmes[n % len(programmes)]}/summary")
    if name == "P5 history":
        programme = scenario.new_programme(200)
        return lambda _: scenario.get(f"{base}/{programme}/events")
    if name == "P5 ?version=":
        programme = scenario.new_programme(200)
        return lambda n: scenario.get(f"{base}/{programme}?version={1 + n % 200}")
    raise ValueError(name)


SCENARIOS = ("P1 one event", "P2 100-event batch", "P4 dashboard / summary", "P5 history",
             "P5 ?version=")


def profile_scenario(kind: str, name: str, requests: int) -> dict[str, Any]:
    url = fresh_store(kind, "cpu-profile")
    scenario = Scenario(url)
    try:
        request = requests_for(name, scenario)
        count = requests if not name.startswith("P2") else max(requests // 10, 20)
        # Three sets of requests, built before anything is timed: posts are new
        # events each time (a repeated one would be an idempotent replay).
        warm, timed, profiled = ([request(offset + n) for n in range(count)]
                                 for offset in (0, count, 2 * count))
        for environ in warm[:50]:  # caches, connections, imports
            scenario.run(environ)
        began = time.process_time()
        for environ in timed:
            scenario.run(environ)
        cpu_ms = (time.process_time() - began) / count * 1000
        profile = cProfile.Profile(time.process_time)  # CPU, not waits on the database
        profile.enable()
        for environ in profiled:
            scenario.run(environ)
        profile.disable()
    finally:
        scenario.close()
        drop_store(kind, "cpu-profile")
    layers = by_layer(profile)
    log(f"  {name}: {cpu_ms:.2f} ms CPU per request; "
        + ", ".join(f"{row['layer']} {row['share_pct']}%" for row in layers[:4]))
    return {"scenario": name, "requests": count, "cpu_ms_per_request": round(cpu_ms, 2),
            "layers": layers}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_cpu",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    os.environ.setdefault("TRACTION_LOG_LEVEL", "warning")
    log(f"CPU by layer per request, in process, on {kind}")
    result = {
        "benchmark": "CPU per request by layer (cProfile, in process)",
        "store": kind,
        "measured_at": now_iso(),
        "scenarios": [profile_scenario(kind, name, args.requests) for name in SCENARIOS],
        "reproduce": f"python -m bench.profile_cpu --store {kind}",
    }
    write_result(f"cpu-profile-{kind}", result)
    return result


if __name__ == "__main__":
    main()
