"""R7: PostgreSQL stopped and restarted under `traction serve`.

While the database is down every answer is 503 with Retry-After (never a
500), within a bounded time; when it returns the service recovers by itself
and every event acknowledged with 201 (or 200) is in the history, once.

The test runs its own throwaway cluster, which it crashes (`pg_ctl stop -m
immediate`) and starts again: never the machine's shared server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.ops.postgres_cluster import PostgresCluster, require_clusters
from tests.ops.serving import LoggedServer
from tests.stores import initialise

pytestmark = pytest.mark.slow

#: The longest a request may take while the database is down: the library
#: tries 10 times, each waiting TRACTION_PG_CONNECT_TIMEOUT (1 s) for a
#: connection, after the token cache's own pool has waited up to 5 s, once
#: or twice (measured: 5-17 s).
OUTAGE_ANSWER_WITHIN = 22.0
#: How soon after the database is back a post must succeed again.
RECOVERY_WITHIN = 20.0


@dataclass
class Outcome:
    kind: str
    status: int | str  # a status, or the client-side error
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    envelope: dict[str, Any] | None = None


class Client:
    """Posts sessions to one programme and reads it back, remembering every answer."""

    def __init__(self, server: LoggedServer, token: str, clinic: str) -> None:
        self.server = server
        self.auth = {"Authorization": f"Bearer {token}"}
        self.programme = f"/v1/clinics/{clinic}/programmes/{uuid.uuid4()}"
        self.outcomes: list[Outcome] = []
        self.acknowledged: dict[str, int] = {}  # event_id -> version, from 201 and 200
        self.posted: dict[str, dict[str, Any]] = {}
        self.day = 0.0
        self._lock = threading.Lock()

    def post(self, envelope: dict[str, Any] | None = None) -> Outcome:
        if envelope is None:
            with self._lock:
                self.day += 0.01
                envelope = b.session(self.day)
        self.posted[envelope["event_id"]] = envelope
        outcome = self._call("post", "POST", self.programme + "/events", envelope)
        outcome.envelope = envelope
        if outcome.status in (200, 201):
            for item in json.loads(outcome.body)["recorded"]:
                self.acknowledged[item["event_id"]] = item["version"]
        return outcome

    def post_until_acknowledged(self, envelope: dict[str, Any] | None = None) -> Outcome:
        """Post, and post again after a 503, as a client that honours Retry-After does."""
        return self._until_answered(self.post, envelope)

    def read(self, kind: str, auth: dict[str, str] | None = None) -> Outcome:
        path = self.programme + ("/events" if kind == "history" else "")
        return self._call(kind, "GET", path, auth=auth)

    def read_until_answered(self, kind: str) -> Outcome:
        """Read, and read again after a 503, as a client that honours Retry-After does."""
        return self._until_answered(lambda _: self.read(kind), None)

    @staticmethod
    def _until_answered(call: Any, envelope: dict[str, Any] | None) -> Outcome:
        """Just after the database is back, a request can still get a 503, safe
        to retry: a pooled connection that died with the database can fail
        one request (the service's own tables' pool does not check
        connections before use), and a worker that saw the store fail in the
        last few seconds answers 503 until its next probe gets through
        (service/http/availability.py)."""
        for _ in range(4):
            outcome = call(envelope)
            if outcome.status != 503:
                assert outcome.seconds < 5
                return outcome
            envelope = outcome.envelope
            time.sleep(int(outcome.headers["Retry-After"]))
        raise AssertionError(f"still refused after the database came back: {outcome.body}")

    def _call(self, kind: str, method: str, path: str, body: Any = None,
              auth: dict[str, str] | None = None) -> Outcome:
        started = time.monotonic()
        try:
            status, text, headers = self.server.call(method, path, body, auth or self.auth,
                                                     timeout=40)
        except OSError as error:  # the connection itself failed: no answer at all
            status, text, headers = repr(error), "", {}
        outcome = Outcome(kind, status, time.monotonic() - started, headers, text)
        with self._lock:
            self.outcomes.append(outcome)
        return outcome


@pytest.fixture
def cluster():
    require_clusters()
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def clinic_with_token(url: str, role: str) -> str:
    """Create the tables and one clinic in the store; a token of `role` for it."""
    store = parse_database_url(url)
    initialise(url)
    database = Database(store)
    directory = Directory(database)
    directory.add_clinic("north-physio", "North Physio")
    _, token = directory.issue_token(role, "north-physio", "outage test")
    database.close()
    return token


def test_postgres_outage_gives_503_then_recovers_with_nothing_acknowledged_lost(cluster):
    token = clinic_with_token(cluster.url, "writer")

    server = LoggedServer(cluster.url, 2, "--no-projections")
    try:
        # One programme per client: requests for one programme in one worker
        # wait for each other (the library's per-aggregate lock), and that is
        # not what this test measures.
        clients = [Client(server, token, "north-physio") for _ in range(4)]
        for client in clients:
            assert client.post(b.started()).status == 201
            assert client.post().status == 201
        assert clients[0].read("state").status == 200

        # -- down: a burst of clients posting and reading --------------------
        cluster.stop("immediate")
        outage: list[Outcome] = []
        calls = (clients[0].post, clients[1].post, lambda: clients[2].read("state"),
                 lambda: clients[3].read("history"))
        threads = [threading.Thread(target=lambda call=call: outage.append(call()))
                   for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=OUTAGE_ANSWER_WITHIN + 10)

        # Once a worker has seen the store fail, it answers 503 at once
        # (service/http/availability.py), letting one probe through every few seconds.
        quick = [clients[2].read("state") for _ in range(6)]
        assert {o.status for o in quick} == {503}
        assert sum(o.seconds < 1.0 for o in quick) >= 4, [round(o.seconds, 2) for o in quick]

        # A worker that gunicorn starts now cannot build the app (that needs the
        # store): it boots anyway and answers 503 (service/wsgi.py). gunicorn
        # used to stop the whole server instead: connection refused, for good.
        os.kill(server.worker_pids()[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while not [line for line in server.log() if line["logger"] == "service.wsgi"]:
            assert server.process.poll() is None, "the server stopped"
            assert time.monotonic() < deadline, "no new worker started without the store"
            time.sleep(0.1)
        after_restart = [clients[3].read("history") for _ in range(6)]
        assert {o.status for o in after_restart} == {503}, [o.status for o in after_restart]
        assert server.process.poll() is None

        # -- back -------------------------------------------------------------
        cluster.start()
        back_at = time.monotonic()
        refused = [o for o in outage if o.status == 503]
        assert len(refused) == len(calls), [(o.kind, o.status, o.body) for o in outage]
        for outcome in outage:
            assert outcome.seconds < OUTAGE_ANSWER_WITHIN, (outcome.kind, outcome.seconds)
            assert outcome.headers["Retry-After"].isdigit()
            assert outcome.headers["Content-Type"] == "application/problem+json"
            problem = json.loads(outcome.body)
            assert (problem["status"], problem["type"]) == (
                503, "urn:traction-ledger:problem:store-unavailable")

        # A refused post is safe to send again: it gets recorded, or (had it
        # been committed after all) its original receipt.
        refused_posts = [(client, client.outcomes[-1].envelope) for client in clients[:2]]
        first_client, first = refused_posts[0]
        while True:
            retried = first_client.post(first)
            if retried.status in (200, 201):
                break
            assert retried.status == 503, (retried.status, retried.body)
            assert time.monotonic() - back_at < RECOVERY_WITHIN, "no recovery"
            time.sleep(0.2)
        recovered_after = time.monotonic() - back_at
        for client, envelope in refused_posts[1:]:
            assert client.post_until_acknowledged(envelope).status in (200, 201)
        for client in clients:
            for _ in range(2):
                assert client.post_until_acknowledged().status == 201

        # -- nothing acknowledged is lost, nothing is recorded twice ----------
        for client in clients:
            history = client.read_until_answered("history")
            assert history.status == 200
            events = json.loads(history.body)["events"]
            versions = {event["event_id"]: event["version"] for event in events}
            assert len(versions) == len(events)
            assert [event["version"] for event in events] == list(range(1, len(events) + 1))
            assert versions.items() >= client.acknowledged.items()
            # Every post was retried until acknowledged: the history is exactly them.
            assert set(versions) == set(client.posted) == set(client.acknowledged)
            assert not [o for o in client.outcomes if o.status == 500]
        slowest = {o.kind: round(o.seconds, 1) for o in outage}
        print(f"outage answers after {slowest} s; recovered {recovered_after:.1f} s "
              "after the database was back")
    finally:
        server.stop()
    answered = [line["status"] for line in server.log() if line["logger"] == "traction.access"]
    assert 503 in answered and 500 not in answered


def test_a_worker_that_starts_while_the_store_is_down_serves_once_it_is_back(cluster):
    """The stand-in that a worker serves when it cannot build the app at boot."""
    from werkzeug.test import Client as WsgiClient

    from service.config import Settings
    from service.wsgi import AppAwaitingStore, create_app
    from tests.stores import TEST_DATA_KEY

    auth = {"Authorization": f"Bearer {clinic_with_token(cluster.url, 'viewer')}"}
    programmes = "/v1/clinics/north-physio/programmes"

    cluster.stop("immediate")
    app = create_app(Settings(database_url=cluster.url, data_key=TEST_DATA_KEY))
    assert isinstance(app, AppAwaitingStore)
    app.retry_every = 0.5
    client = WsgiClient(app)
    refused = client.get(programmes, headers=auth)
    assert refused.status_code == 503
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "urn:traction-ledger:problem:store-unavailable"
    assert refused.headers["Retry-After"].isdigit()
    assert client.get("/healthz").status_code == 200  # alive: it recovers by itself

    cluster.start()
    deadline = time.monotonic() + RECOVERY_WITHIN
    while (answer := client.get(programmes, headers=auth)).status_code == 503:
        assert time.monotonic() < deadline, "the worker never built its app"
        time.sleep(0.2)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["programmes"] == []
    assert app.app is not None
