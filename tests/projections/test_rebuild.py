"""Rebuilding beside the live version, and poison events.

- While a rebuild builds a new version and swaps it in, reads never fail and
  never see a half-built model; the rebuilt models equal the runner's.
- An event the projection cannot process is parked and its programme held,
  every other programme stays live, /readyz says not ready, `status` shows
  it; `retry` after a fix applies it and the held events (equal to a clean
  rebuild), `skip` gives up on it — with or without a runner active.
"""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from projections import summaries
from projections.engine import MetricsEngine
from projections.status import projection_status
from projections.store import DEFAULT_PROJECTION, open_read_models
from service.cli.projections import projections as projections_cli
from service.http.api.context import POSITIONS
from tests.projections.history import Log, busy_log, save
from tests.stores import SCRAPE, RunnerAt, rebuild_at

NAME = DEFAULT_PROJECTION


def test_reads_keep_working_while_a_rebuild_builds_and_swaps(app, client, tokens, monkeypatch):
    store = app.extensions["traction"].store
    programmes = app.extensions["traction"].programmes
    log = busy_log(programmes=10, events=30, seed=5)
    head = save(programmes, log)
    RunnerAt(store.url).run(once=True)
    read_models = open_read_models(programmes)
    before = read_models.digest(NAME, 1)
    in_a = sum(1 for clinic in log.clinics.values() if clinic == "clinic-a")
    # A clinic's routes show its own count of its events; the network's, the log's.
    head_a = app.extensions[POSITIONS].at("clinic-a", head)
    assert 0 < head_a < head

    # A slow rebuild (each batch waits a little), so reads overlap every step.
    absorb = MetricsEngine.absorb

    def slow_absorb(self, *args, **kwargs):
        threading.Event().wait(0.03)
        return absorb(self, *args, **kwargs)

    monkeypatch.setattr(MetricsEngine, "absorb", slow_absorb)
    seen: set[int] = set()
    problems: list[str] = []
    done = threading.Event()

    def read_all_the_time() -> None:
        while not done.is_set():
            seen.add(read_models.versions(NAME)[0])
            dashboard = client.get("/v1/clinics/clinic-a/dashboard", headers=tokens.viewer_a)
            network = client.get("/v1/dashboard", headers=tokens.viewer_all)
            listing = client.get("/v1/clinics/clinic-a/programmes?limit=500",
                                 headers=tokens.viewer_a)
            for response, shown in ((dashboard, head_a), (network, head), (listing, head_a)):
                if response.status_code != 200:
                    problems.append(f"{response.status_code} {response.data[:200]!r}")
                elif response.headers["X-Projection-Position"] != str(shown):
                    problems.append(f"position {response.headers['X-Projection-Position']}")
            if dashboard.status_code == network.status_code == listing.status_code == 200:
                counts = (dashboard.json["programmes"], network.json["totals"]["programmes"],
                          len(listing.json["programmes"]))
                if counts != (in_a, len(log.clinics), in_a):
                    problems.append(f"half-built: {counts}")

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        report = rebuild_at(store.url, batch_size=50, progress=False, grace=0.4)
    finally:
        done.set()
        reader.join(timeout=30)
    assert problems == []
    assert seen == {1, 2}  # reads were served by the old version, then the new
    assert (report.old_version, report.new_version, report.position) == (1, 2, head)
    assert read_models.versions(NAME) == (2, None)
    assert read_models.digest(NAME, 2) == before
    # The old version's tables are gone after the grace period.
    status = projection_status(programmes, read_models, NAME)
    assert (status.live_version, status.position, status.lag_events) == (2, head, 0)


def test_the_runner_follows_the_new_version_after_a_swap(app):
    store = app.extensions["traction"].store
    programmes = app.extensions["traction"].programmes
    read_models = open_read_models(programmes)
    log = busy_log(programmes=4, events=20, seed=9)
    head = save(programmes, log)
    runner = RunnerAt(store.url)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert runner.caught_up.wait(timeout=30)
        report = rebuild_at(store.url, progress=False, grace=0.2)
        assert read_models.live_position(NAME) == (report.new_version, head)
        more = Log()
        more.programme("clinic-b").pain(1, 4)
        position = save(programmes, more)
        deadline = threading.Event()
        for _ in range(300):
            if read_models.live_position(NAME) == (report.new_version, position):
                break
            deadline.wait(0.02)
        assert read_models.live_position(NAME) == (report.new_version, position)
    finally:
        runner.stop.set()
        thread.join(timeout=30)
    assert read_models.versions(NAME) == (2, None)


class Bug:
    """A metric that cannot handle a report of pain 9 (until it is fixed)."""

    def __init__(self, monkeypatch) -> None:
        self.original = summaries._HANDLERS["PainReported"]
        self.monkeypatch = monkeypatch

        def buggy(state, event, position, delta):
            if event.data["pain_nrs"] == 9:
                raise ValueError("cannot handle pain 9")
            self.original(state, event, position, delta)

        monkeypatch.setitem(summaries._HANDLERS, "PainReported", buggy)

    def fix(self) -> None:
        self.monkeypatch.setitem(summaries._HANDLERS, "PainReported", self.original)


@pytest.fixture
def poisoned(app):
    """Programme p has a poison event (pain 9) with two events after it; q is fine."""
    programmes = app.extensions["traction"].programmes
    log = Log()
    p, q = log.programme("clinic-a", baseline=8), log.programme("clinic-a", baseline=6)
    p.session(1)
    p.pain(2, 9)
    poison = len(log.records)
    q.session(1)
    p.session(3)
    q.pain(2, 3)
    p.pain(4, 2)
    head = save(programmes, log)
    return p, q, poison, head


def cli(app, *args: str):
    url = app.extensions["traction"].settings.database_url
    return CliRunner().invoke(projections_cli, list(args), env={"TRACTION_DATABASE_URL": url})


def test_a_poison_event_is_parked_and_retried_after_a_fix(app, client, tokens, poisoned,
                                                          monkeypatch):
    p, q, poison, head = poisoned
    store = app.extensions["traction"].store
    programmes = app.extensions["traction"].programmes
    read_models = open_read_models(programmes)
    bug = Bug(monkeypatch)
    RunnerAt(store.url).run(once=True)

    status = projection_status(programmes, read_models, NAME)
    assert status.position == head  # the runner went on
    assert [e["position"] for e in status.poison] == [poison]
    assert "cannot handle pain 9" in status.poison[0]["error"]
    assert status.held == 2
    held = client.get(f"/v1/clinics/clinic-a/programmes/{p.id}/summary", headers=tokens.viewer_a)
    # The clinic's token is shown its own count of events; the auditor the log's.
    in_clinic = app.extensions[POSITIONS].of_events("clinic-a", [poison])[poison]
    assert (held.json["held_since_position"], held.json["sessions_completed"]) == (in_clinic, 1)
    audited = client.get(f"/v1/clinics/clinic-a/programmes/{p.id}/summary",
                         headers=tokens.auditor)
    assert audited.json["held_since_position"] == poison
    fine = client.get(f"/v1/clinics/clinic-a/programmes/{q.id}/summary", headers=tokens.viewer_a)
    assert (fine.json["latest_pain"], fine.json["held_since_position"]) == (3, None)
    readyz = client.get("/readyz", headers=SCRAPE)
    assert readyz.status_code == 503
    assert readyz.json["projections"][0]["poison_events"] == 1
    shown = cli(app, "status")
    assert "1 poison, 2 held" in shown.output
    assert f"poison at position {poison}" in shown.output

    still = cli(app, "retry", NAME, str(poison))  # not fixed yet
    assert still.exit_code == 1
    assert "still fails" in still.output

    bug.fix()
    retried = cli(app, "retry", NAME, str(poison))
    assert retried.exit_code == 0, retried.output
    status = projection_status(programmes, read_models, NAME)
    assert (status.poison, status.held, status.skipped) == ([], 0, 0)
    summary = client.get(f"/v1/clinics/clinic-a/programmes/{p.id}/summary",
                         headers=tokens.viewer_a).json
    assert (summary["sessions_completed"], summary["latest_pain"]) == (2, 2)
    assert summary["held_since_position"] is None
    assert [t["pain_nrs"] for t in summary["pain_trajectory"]] == [9, 2]
    assert client.get("/readyz").status_code == 200
    # Exactly what a clean rebuild makes.
    retried_digest = read_models.digest(NAME)
    rebuild_at(store.url, progress=False, grace=0)
    assert read_models.digest(NAME) == retried_digest


def test_skipping_a_poison_event_with_the_runner_active(app, client, tokens, poisoned,
                                                        monkeypatch):
    p, _q, poison, head = poisoned
    store = app.extensions["traction"].store
    read_models = open_read_models(app.extensions["traction"].programmes)
    Bug(monkeypatch)
    runner = RunnerAt(store.url)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert runner.caught_up.wait(timeout=30)
        # The runner owns the writes: the command asks it, and waits for it.
        skipped = cli(app, "skip", NAME, str(poison))
    finally:
        runner.stop.set()
        thread.join(timeout=30)
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.output
    parked = read_models.parked(NAME, 1)
    assert [(row["position"], row["kind"]) for row in parked] == [(poison, "skipped")]
    summary = client.get(f"/v1/clinics/clinic-a/programmes/{p.id}/summary",
                         headers=tokens.viewer_a).json
    # Everything but the skipped report.
    assert (summary["sessions_completed"], summary["pain_reports"], summary["latest_pain"]) == (
        2, 1, 2)
    assert read_models.live_position(NAME) == (1, head)
    assert cli(app, "retry", NAME, str(poison)).exit_code == 1  # nothing parked there now
