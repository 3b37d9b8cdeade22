"""Reads from a real streaming replica that the test makes on this machine.

A primary cluster of its own, and a replica of it (`pg_basebackup -R` into a
temporary directory, a second postmaster on another port). The service is
given both (TRACTION_READ_DATABASE_URL):

- dashboards, summaries, lists, histories and the audit logs are read from
  the replica, and answer exactly as the primary would;
- `min_position` keeps its meaning: a replica behind the asked position (its
  replay paused) waits, then answers 503 with Retry-After, never older;
- a history is never older than the primary's, even with the replica behind:
  a client reads its own writes;
- the replica stopping and coming back: reads go to the primary (never a
  500), /readyz says so, and they go back to the replica once it answers;
- a read URL that can never be this store's replica stops the start with a
  clear message.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from threading import Thread

import pytest

from service.bootstrap import Components, check_read_replica
from service.config import Settings
from service.http.app import create_app
from service.storage.replica import ReplicaMisconfigured
from tests import builders as b
from tests.conftest import Tokens
from tests.e2e.server import TRACTION, free_port
from tests.ops.postgres_cluster import PostgresCluster, require_clusters
from tests.ops.test_metrics import scrape, value
from tests.reliability.live import LiveServer, bootstrap, request
from tests.stores import SCRAPE, RunnerAt, components_at, initialise

NAME = "dashboards"
#: How soon reads go back to a replica that is up again (the probe runs every second).
BACK_WITHIN = 15.0


@dataclass
class Replicated:
    primary: PostgresCluster
    replica: PostgresCluster
    components: Components
    client: object
    tokens: Tokens
    #: Every routed read: ("replica", "") or ("primary", why).
    routed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def replica_url(self) -> str:
        return self.replica.url

    def caught_up(self, timeout: float = 20) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while True:
            replayed = self.replica.sql(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]
            if replayed:
                return
            assert time.monotonic() < deadline, "the replica never caught up"
            time.sleep(0.05)

    def served_by(self, call) -> tuple[object, list[tuple[str, str]]]:
        """Call it; its answer and the reads it routed."""
        before = len(self.routed)
        answer = call()
        return answer, self.routed[before:]


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    require_clusters()
    primary = PostgresCluster()
    replica = None
    runner = None
    components = None
    try:
        primary.start()
        initialise(primary.url)
        replica = primary.replica()
        replica.start()
        components = components_at(primary.url, read_database_url=replica.url)
        app = create_app(components)
        app.config["TESTING"] = True
        runner = RunnerAt(primary.url)
        Thread(target=runner.run, daemon=True).start()
        state = Replicated(primary, replica, components, app.test_client(),
                           Tokens(components.directory))
        components.replica.listeners.append(
            lambda served_by, reason: state.routed.append((served_by, reason)))
        assert runner.caught_up.wait(30), "the runner did not start"
        state.caught_up()
        yield state
    finally:
        if runner is not None:
            runner.stop.set()
        if components is not None:
            components.close()
        if replica is not None:
            replica.destroy()
        primary.destroy()


def post(state: Replicated, programme: str, *envelopes: dict) -> dict:
    answer = state.client.post(f"{programme}/events", json={"events": list(envelopes)},
                               headers=state.tokens.writer_a)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.json


def projected(state: Replicated, position: int) -> None:
    """Wait until the runner has processed `position` (on the primary)."""
    deadline = time.monotonic() + 20
    while state.components.read_models.live_position(NAME)[1] < position:
        assert time.monotonic() < deadline, "the runner did not process the position"
        time.sleep(0.02)


def test_reads_come_from_the_replica_and_are_never_older_than_asked(replicated):
    state = replicated
    programme = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}"
    first = post(state, programme, b.started(), b.session(0.5))
    position = first["recorded"][-1]["position"]
    viewer, auditor = state.tokens.viewer_a, state.tokens.auditor
    projected(state, position)  # on the primary: what follows is about the replica

    summary, routed = state.served_by(lambda: state.client.get(
        f"{programme}/summary?min_position={position}", headers=viewer))
    assert summary.status_code == 200, summary.get_data(as_text=True)
    assert int(summary.headers["X-Projection-Position"]) >= position
    assert routed == [("replica", "")]
    state.caught_up()
    history, routed = state.served_by(lambda: state.client.get(f"{programme}/events",
                                                               headers=viewer))
    assert routed == [("replica", "")]
    programme_id = uuid.UUID(programme.rsplit("/", 1)[1])
    assert history.json["events"] == state.components.programmes.history("clinic-a",
                                                                         programme_id)
    for path in ("/v1/clinics/clinic-a/dashboard", "/v1/clinics/clinic-a/programmes",
                 "/v1/audit/events?after=0", "/v1/audit/access-log?after=0"):
        token = auditor if path.startswith("/v1/audit") else viewer
        answer, routed = state.served_by(lambda: state.client.get(path, headers=token))  # noqa: B023
        assert answer.status_code == 200 and routed == [("replica", "")], (path, routed)

    # -- the replica falls behind (its replay paused) ------------------------------
    state.replica.sql("SELECT pg_wal_replay_pause()")
    try:
        second = post(state, programme, b.session(1.0))
        later = second["recorded"][-1]["position"]
        projected(state, later)
        asked = state.client.get(f"{programme}/summary?min_position={later}", headers=viewer)
        assert asked.status_code == 503, asked.get_data(as_text=True)
        assert asked.headers["Retry-After"].isdigit()
        assert int(asked.headers["X-Projection-Position"]) < later
        # Without min_position: the replica's copy, which says how old it is.
        stale = state.client.get(f"{programme}/summary", headers=viewer)
        assert stale.status_code == 200
        assert int(stale.headers["X-Projection-Position"]) < later
        assert stale.json["sessions_completed"] == 1
        # A history is as current as the programme: the primary answers it.
        history, routed = state.served_by(lambda: state.client.get(f"{programme}/events",
                                                                   headers=viewer))
        assert history.status_code == 200
        assert [e["version"] for e in history.json["events"]] == [1, 2, 3]
        assert routed == [("primary", "behind")]
        ready = state.client.get("/readyz", headers=SCRAPE).json["replica"]
        assert ready["state"] == "streaming" and ready["serving_reads"]
        assert ready["lag_events"] >= 1 and ready["lag_bytes"] > 0, ready
    finally:
        state.replica.sql("SELECT pg_wal_replay_resume()")
    caught = state.client.get(f"{programme}/summary?min_position={later}", headers=viewer)
    assert caught.status_code == 200 and caught.json["sessions_completed"] == 2
    state.caught_up()
    assert state.client.get("/readyz", headers=SCRAPE).json["replica"]["lag_events"] == 0


def test_a_replica_that_stops_and_comes_back(replicated):
    state = replicated
    programme = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}"
    receipt = post(state, programme, b.started(), b.pain(6, 0.5))
    position = receipt["recorded"][-1]["position"]
    projected(state, position)
    viewer, auditor = state.tokens.viewer_a, state.tokens.auditor
    reads = [(f"{programme}/summary?min_position={position}", viewer),
             ("/v1/clinics/clinic-a/dashboard", viewer),
             ("/v1/clinics/clinic-a/programmes", viewer),
             (f"{programme}/events", viewer),
             ("/v1/audit/events?after=0", auditor),
             ("/v1/audit/access-log?after=0", auditor)]
    state.caught_up()
    assert state.client.get(reads[0][0], headers=viewer).status_code == 200

    state.replica.stop("immediate")
    try:
        for path, token in reads:
            began = time.monotonic()
            answer, routed = state.served_by(lambda: state.client.get(path,  # noqa: B023
                                                                      headers=token))  # noqa: B023
            assert answer.status_code == 200, (path, answer.get_data(as_text=True))
            assert routed and routed[-1][0] == "primary", (path, routed)
            assert time.monotonic() - began < 5, path
        assert json.loads(state.client.get(reads[0][0], headers=viewer).data)["pain_reports"] == 1
        ready = state.client.get("/readyz", headers=SCRAPE)
        assert ready.status_code == 200  # the primary serves the reads: still ready
        assert ready.json["replica"]["state"] == "unreachable"
        assert ready.json["replica"]["serving_reads"] is False
        samples = scrape(state.client)
        assert value(samples, "traction_replica_up") == 0
        assert value(samples, "traction_replica_reads_total", served_by="primary",
                     reason="down") >= len(reads) - 1
    finally:
        state.replica.start()

    deadline = time.monotonic() + BACK_WITHIN
    while True:
        answer, routed = state.served_by(lambda: state.client.get(reads[1][0], headers=viewer))
        assert answer.status_code == 200
        if routed == [("replica", "")]:
            break
        assert time.monotonic() < deadline, f"reads never went back to the replica: {routed}"
        time.sleep(0.2)
    assert state.client.get("/readyz", headers=SCRAPE).json["replica"]["state"] == "streaming"
    assert value(scrape(state.client), "traction_replica_up") == 1


def test_a_read_url_that_is_no_replica_of_the_store_stops_the_start(replicated):
    state = replicated
    primary = state.primary.url

    def check(read_url: str) -> str | None:
        return check_read_replica(Settings(database_url=primary, read_database_url=read_url))

    assert check(state.replica_url) is None
    other_database = state.replica_url.rsplit("/", 1)[0] + "/template1"
    with pytest.raises(ReplicaMisconfigured, match="no Traction Ledger tables"):
        check(other_database)
    with pytest.raises(ReplicaMisconfigured, match="does not exist"):
        check(state.replica_url.rsplit("/", 1)[0] + "/no_such_database")
    assert "names the primary itself" in check(primary)
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert "cannot be reached now" in check(closed)

    another = PostgresCluster()
    try:
        another.start()
        with pytest.raises(ReplicaMisconfigured, match="is not a replica of the store"):
            check(another.url)
    finally:
        another.destroy()

    # `traction serve` says so and stops before any worker starts.
    done = subprocess.run(
        [TRACTION, "serve", "--no-demo", "--no-projections", "--bind",
         f"127.0.0.1:{free_port()}"],
        env={**os.environ, "TRACTION_DATABASE_URL": primary,
             "TRACTION_READ_DATABASE_URL": other_database},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "TRACTION_READ_DATABASE_URL" in done.stderr and "no Traction Ledger tables" in \
        done.stderr, done.stderr


@pytest.mark.slow
def test_traction_serve_reads_from_the_replica_and_reports_its_lag(replicated):
    """The same through gunicorn: every worker builds its replica side."""
    state = replicated
    tokens = bootstrap(state.primary.url, clinics=("clinic-r",))
    server = LiveServer(state.primary.url, workers=2, args=("--no-projections",),
                        env={"TRACTION_READ_DATABASE_URL": state.replica_url})
    try:
        programme = f"/v1/clinics/clinic-r/programmes/{uuid.uuid4()}"
        receipt = request(server.port, "POST", f"{programme}/events", b.started(),
                          token=tokens.writer["clinic-r"])
        assert receipt.status == 201, receipt.raw
        position = receipt.body["recorded"][-1]["position"]
        projected(state, position)
        summary = request(server.port, "GET", f"{programme}/summary?min_position={position}",
                          token=tokens.viewer["clinic-r"])
        assert summary.status == 200, summary.raw
        ready = request(server.port, "GET", "/readyz", headers=SCRAPE).body["replica"]
        assert ready["state"] == "streaming" and ready["lag_events"] is not None, ready

        state.replica.stop("immediate")
        try:
            for _ in range(4):  # both workers, each finding out for itself
                answer = request(server.port, "GET", f"{programme}/events",
                                 token=tokens.viewer["clinic-r"])
                assert answer.status == 200, answer.raw
            ready = request(server.port, "GET", "/readyz", headers=SCRAPE)
            assert ready.status == 200 and ready.body["replica"]["state"] == "unreachable"
        finally:
            state.replica.start()
        deadline = time.monotonic() + BACK_WITHIN
        while request(server.port, "GET", "/readyz",
                      headers=SCRAPE).body["replica"]["state"] != "streaming":
            assert time.monotonic() < deadline, "the replica never came back"
            time.sleep(0.2)
        assert not server.errors_logged(), server.errors_logged()
    finally:
        server.stop()
        server.remove_log()
