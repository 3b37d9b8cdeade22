"""Several hosts on one PostgreSQL, as processes on this machine.

Two API hosts (`traction serve --no-projections`, each on its own port, a
client spreading its posts over both) and two projection runners
(`traction projections run`: one active, one standing by on the runner
lock), all on one database:

- the active runner is killed with SIGKILL during ingest: the standby takes
  over within 5 s; then the new active runner's lock session is ended from
  the database side (pg_terminate_backend, as a lost connection would): it
  gives up, the other takes over within 5 s. Nothing is applied twice: the
  read models equal (digest) a rebuild from scratch;
- a token revoked through host A is refused by host B within 1 s;
- `min_position` from a write on host A is honoured by a read on host B;
- a clinic registered on host A is served by host B.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from projections.locks import ProjectionLock
from projections.store import DEFAULT_PROJECTION, open_read_models
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.conftest import _postgres_base_url
from tests.e2e.server import traction
from tests.projections.runners import RunnerProcess, wait_until
from tests.reliability.ingest import CHECKS_AFTER_CRASHES, IngestReport, ingest_under_kills
from tests.reliability.live import LiveServer, Tokens, bootstrap, request
from tests.stores import programmes_at, throwaway_postgres_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAME = DEFAULT_PROJECTION
#: The issue's bounds.
TAKEOVER_WITHIN = 5.0
REVOCATION_WITHIN = 1.0
#: These tests check that host B honours a position written through host A, not
#: how fast a runner applies it: on a loaded CI machine a freshly started runner
#: has been seen to take longer than the default 2 s wait (a 503 at 1417 of 1418).
PATIENT_READS = {"TRACTION_MIN_POSITION_WAIT": "15"}


@dataclass
class Hosts:
    url: str
    a: LiveServer
    b: LiveServer
    tokens: Tokens


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    with throwaway_postgres_schema(_postgres_base_url()) as url:
        tokens = bootstrap(url)
        started: list[LiveServer] = []
        # Both hosts boot at once, as they would behind a load balancer.
        threads = [threading.Thread(target=lambda: started.append(
            LiveServer(url, workers=2, args=("--no-projections",), env=PATIENT_READS)))
            for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        try:
            assert len(started) == 2, "an API host did not start"
            yield Hosts(url, started[0], started[1], tokens)
        finally:
            for server in started:
                server.stop()
                server.remove_log()


@pytest.fixture
def runners(hosts, tmp_path) -> Iterator[list[RunnerProcess]]:
    started: list[RunnerProcess] = []
    yield started
    for runner in started:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def lock_holder(url: str) -> int | None:
    """The OS pid of the runner holding the runner lock, as `traction projections
    status` shows it ("active runner: HOST pid N")."""
    holder = ProjectionLock(parse_database_url(url), f"runner:{NAME}").holder()
    return int(holder.rsplit(" pid ", 1)[1]) if holder else None


def lock_session(url: str) -> int:
    """The server process of the session holding the runner lock."""
    key = ProjectionLock(parse_database_url(url), f"runner:{NAME}").key
    with psycopg.connect(parse_database_url(url).conninfo(), autocommit=True) as connection:
        row = connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::bigint = (%s::bigint >> 32) & 4294967295 "
            "AND objid::bigint = %s::bigint & 4294967295 AND objsubid = 1",
            (key, key)).fetchone()
        assert row is not None, "nobody holds the runner lock"
        return row[0]


def standing_by(runner: RunnerProcess) -> bool:
    return "waiting as a standby" in runner.stderr()


def takeover(url: str, read_models, new_active: RunnerProcess, since: float) -> float:
    """Seconds from `since` until `new_active` holds the lock and the read models
    move after that (ingest is running, so there is always something to apply)."""
    wait_until(lambda: lock_holder(url) == new_active.pid, timeout=TAKEOVER_WITHIN * 3)
    position = read_models.live_position(NAME)[1]
    wait_until(lambda: read_models.live_position(NAME)[1] > position,
               timeout=TAKEOVER_WITHIN * 3)
    return time.monotonic() - since


def test_the_standby_runner_takes_over_and_nothing_is_applied_twice(hosts, runners, tmp_path):
    url = hosts.url
    application = programmes_at(url)
    read_models = open_read_models(application)
    first = RunnerProcess(url, logs=tmp_path)
    runners.append(first)
    wait_until(lambda: lock_holder(url) == first.pid, timeout=30)
    second = RunnerProcess(url, logs=tmp_path)
    runners.append(second)
    wait_until(lambda: standing_by(second), timeout=30)

    report = IngestReport()
    # Ingest lasts until both takeovers are seen (each needs new events to apply),
    # however slowly a loaded machine starts the runners; 60 s at most.
    done = threading.Event()
    ingest = threading.Thread(target=lambda: report.merge(ingest_under_kills(
        hosts.a, hosts.tokens, seconds=60, clients=4, kill_interval=None, seed=19,
        spread_over=(hosts.a, hosts.b), until=done)))
    ingest.start()
    try:
        time.sleep(2)
        # -- the active runner dies mid-ingest ---------------------------------
        killed_at = time.monotonic()
        first.kill()
        first.wait()
        after_kill = takeover(url, read_models, second, killed_at)
        assert after_kill < TAKEOVER_WITHIN, after_kill

        # -- the new active runner's connection is lost ------------------------
        third = RunnerProcess(url, logs=tmp_path)
        runners.append(third)
        wait_until(lambda: standing_by(third), timeout=30)
        time.sleep(1)
        cut_at = time.monotonic()
        with psycopg.connect(parse_database_url(url).conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (lock_session(url),))
        after_cut = takeover(url, read_models, third, cut_at)
        done.set()
        assert after_cut < TAKEOVER_WITHIN, after_cut
        # The runner that lost its connection gave up and stands by.
        wait_until(lambda: "lost the runner lock" in second.stderr(), timeout=10)
        assert second.poll() is None
        assert lock_holder(url) == third.pid
        status = traction(url, "projections", "status")
        assert f"active runner: {socket.gethostname()} pid {third.pid}" in status, status
    finally:
        done.set()
        ingest.join(120)
    print(f"takeover after SIGKILL {after_kill:.2f} s, after a lost connection "
          f"{after_cut:.2f} s; {report.acknowledged_events} events acknowledged")

    assert not report.failures, report.failures[:5]
    assert report.statuses.keys() <= {200, 201}, report.statuses
    for check in CHECKS_AFTER_CRASHES:  # stored once, chain intact, projections == rebuild
        check(url, hosts.a, hosts.tokens, report)
    application.close()


def test_a_token_revoked_through_host_a_is_refused_by_host_b_within_a_second(hosts):
    tokens = hosts.tokens
    issued = request(hosts.a.port, "POST", "/v1/tokens", token=tokens.admin, body={
        "role": "viewer", "clinic_id": "clinic-a", "label": "revoked on A"})
    assert issued.status == 201, issued.raw
    token, token_id = issued.body["token"], issued.body["token_id"]
    dashboard = "/v1/clinics/clinic-a/dashboard"
    for _ in range(6):  # both of host B's workers know the token
        assert request(hosts.b.port, "GET", dashboard, token=token).status == 200

    revoked = request(hosts.a.port, "DELETE", f"/v1/tokens/{token_id}", token=tokens.admin)
    revoked_at = time.monotonic()
    assert revoked.status in (200, 204), revoked.raw
    answers: list[tuple[float, int]] = []
    while (sent := time.monotonic() - revoked_at) < REVOCATION_WITHIN + 1.0:
        answers.append((sent, request(hosts.b.port, "GET", dashboard, token=token).status))
    late = [status for sent, status in answers if sent >= REVOCATION_WITHIN]
    assert len(late) >= 5 and set(late) == {401}, answers
    last_accepted = max((sent for sent, status in answers if status == 200), default=0.0)
    print(f"host B last accepted the revoked token {last_accepted * 1000:.0f} ms after "
          "its revocation on host A")


def test_min_position_from_a_write_on_host_a_is_honoured_by_host_b(hosts, runners, tmp_path):
    runner = RunnerProcess(hosts.url, logs=tmp_path)
    runners.append(runner)
    wait_until(lambda: lock_holder(hosts.url) == runner.pid, timeout=30)  # it has started
    writer, viewer = hosts.tokens.writer["clinic-b"], hosts.tokens.viewer["clinic-b"]
    programme = f"/v1/clinics/clinic-b/programmes/{uuid.uuid4()}"
    for envelope in (b.started(), b.session(0.5), b.session(1.0)):
        receipt = request(hosts.a.port, "POST", programme + "/events", envelope, token=writer)
        assert receipt.status == 201, receipt.raw
        position = receipt.body["recorded"][-1]["position"]
        summary = request(hosts.b.port, "GET", f"{programme}/summary?min_position={position}",
                          token=viewer)
        assert summary.status == 200, summary.raw
        assert int(summary.headers["x-projection-position"]) >= position
        assert summary.body["position"] == position  # this write is in it
    assert summary.body["sessions_completed"] == 2
    # A position nobody has written yet is never answered with an older read.
    ahead = request(hosts.b.port, "GET", f"{programme}/summary?min_position={position + 10**6}",
                    token=viewer)
    assert ahead.status == 503 and ahead.headers["retry-after"].isdigit()


def test_a_clinic_registered_on_host_a_is_served_by_host_b(hosts):
    admin = hosts.tokens.admin
    clinic = f"new-{uuid.uuid4().hex[:8]}"
    registered = request(hosts.a.port, "POST", "/v1/clinics", token=admin,
                         body={"clinic_id": clinic, "name": "Registered on A"})
    assert registered.status == 201, registered.raw
    issued = request(hosts.a.port, "POST", "/v1/tokens", token=admin,
                     body={"role": "writer", "clinic_id": clinic, "label": "issued on A"})
    assert issued.status == 201, issued.raw
    writer = issued.body["token"]
    programme = f"/v1/clinics/{clinic}/programmes/{uuid.uuid4()}"
    posted = request(hosts.b.port, "POST", programme + "/events", b.started(), token=writer)
    assert posted.status == 201, posted.raw
    for host in (hosts.a, hosts.b):
        read = request(host.port, "GET", programme, token=writer)
        assert read.status == 200 and read.body["clinic_id"] == clinic, read.raw
    listed = request(hosts.b.port, "GET", "/v1/clinics", token=admin)
    assert clinic in [c["clinic_id"] for c in listed.body["clinics"]], listed.raw
