"""Through `traction serve`: metrics summed over workers, JSON logs on stderr."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.ops.serving import LoggedServer
from tests.stores import SCRAPE, initialise

pytestmark = pytest.mark.slow

COUNTED = "/v1/clinics"  # answered 401 without a token: no other test here calls it


@pytest.fixture
def sqlite_store(tmp_path) -> str:
    """A store with one clinic (not empty, so `traction serve` seeds no demo)."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    store = parse_database_url(url)
    initialise(url)
    database = Database(store)
    Directory(database).add_clinic("north-physio", "North Physio")
    database.close()
    return url


@pytest.fixture
def server(sqlite_store):
    # The API alone: the projection runner is not what these tests are about.
    server = LoggedServer(sqlite_store, 2, "--no-projections")
    yield server
    server.stop()


def counted_requests(server: LoggedServer) -> tuple[float, float, int]:
    """One scrape: the 401 count and latency count of COUNTED, and the answering worker."""
    request_id = uuid.uuid4().hex
    status, text, _ = server.call("GET", "/metrics",
                                  headers={"X-Request-ID": request_id, **SCRAPE})
    assert status == 200
    samples = {
        (s.name, s.labels.get("route"), s.labels.get("status"), s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    server.wait_for_access_lines(1, "/metrics")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = [line["pid"] for line in server.access_lines("/metrics")
                if line["request_id"] == request_id]
        if pids:
            break
        time.sleep(0.05)
    return (samples.get(("traction_http_requests_total", COUNTED, "401", None), 0.0),
            samples.get(("traction_http_request_duration_seconds_count", COUNTED, "401",
                         None), 0.0),
            pids[0])


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_request_counts_add_up_over_every_worker(server):
    metrics_dir = Path(environment_of(server.gunicorn_master())["PROMETHEUS_MULTIPROC_DIR"])
    assert metrics_dir.is_dir()

    # Fresh connections from several clients at once, until both workers
    # have answered some (on a busy machine one worker may take many rounds).
    sent = 0
    deadline = time.monotonic() + 90
    with ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            statuses = list(pool.map(lambda _: server.call("GET", COUNTED)[0], range(40)))
            assert set(statuses) == {401}
            sent += len(statuses)
            server.wait_for_access_lines(sent, COUNTED)
            if len({line["pid"] for line in server.access_lines(COUNTED)}) == 2:
                break
    workers = {line["pid"] for line in server.access_lines(COUNTED)}
    assert len(workers) == 2, "one worker answered every request; the test proves nothing"

    # Whichever worker answers the scrape, the counts are the sum over both.
    answered_by = set()
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10):
            for requests, latencies, pid in pool.map(lambda _: counted_requests(server),
                                                     range(4)):
                assert (requests, latencies) == (sent, sent)
                answered_by.add(pid)
            if answered_by == workers:
                break
    assert answered_by == workers

    # A worker killed outright: gunicorn starts another, and no count is lost.
    victim = workers.pop()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        booted = [line for line in server.log() if "Booting worker" in line["message"]]
        if len(booted) >= 3:
            break
        time.sleep(0.1)
    assert len(booted) >= 3, "gunicorn did not replace the killed worker"
    for _ in range(6):
        requests, latencies, _ = counted_requests(server)
        assert (requests, latencies) == (sent, sent)

    # The metrics directory lives as long as the server.
    server.stop()
    assert not metrics_dir.exists()


def test_a_metrics_file_not_yet_written_does_not_break_the_scrape(server):
    """prometheus_client creates a worker's file and only then sizes it; a
    scrape in between, or after a worker killed in between, used to fail
    with a 500 (prometheus/client_python#1199). The empty file holds
    nothing yet: the scrape skips it and still adds up the rest."""
    metrics_dir = Path(environment_of(server.gunicorn_master())["PROMETHEUS_MULTIPROC_DIR"])
    for kind in ("counter", "histogram", "gauge_livemostrecent"):
        (metrics_dir / f"{kind}_999999.db").touch()
    for _ in range(3):
        assert server.call("GET", COUNTED)[0] == 401
    server.wait_for_access_lines(3, COUNTED)
    requests, latencies, _ = counted_requests(server)  # asserts a 200
    assert (requests, latencies) == (3, 3)


def test_stderr_is_json_lines_with_one_access_line_per_request(server, sqlite_store):
    database = Database(parse_database_url(sqlite_store))
    record, token = Directory(database).issue_token("writer", "north-physio", "EHR bridge")
    database.close()
    pid = uuid.uuid4()
    programme = f"/v1/clinics/north-physio/programmes/{pid}"
    auth = {"Authorization": f"Bearer {token}"}

    calls = [
        ("POST", programme + "/events", b.started(patient_ref="pt-secret-42"), auth, 201),
        ("GET", programme + "?version=1", None, auth, 200),
        ("GET", programme, None, {"Authorization": f"Bearer {token}x"}, 401),
        ("GET", "/healthz", None, {}, 200),
        ("GET", f"/nowhere/{pid}", None, {}, 404),
    ]
    sent = {}
    for method, path, body, headers, expected in calls:
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        status, _, response_headers = server.call(method, path, body,
                                                  {**headers, "X-Request-ID": request_id})
        assert status == expected
        assert response_headers["X-Request-ID"] == request_id
        sent[request_id] = (method, status)
    _, _, response_headers = server.call("GET", "/healthz", headers={"X-Request-ID": "no way"})
    assert len(response_headers["X-Request-ID"]) == 32

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not set(sent) <= {
            line["request_id"] for line in server.access_lines()}:
        time.sleep(0.05)
    server.stop()

    # Every line but the command's own first one is JSON.
    assert server.lines[0].startswith("serving on ")
    lines = [json.loads(line) for line in server.lines[1:]]
    loggers = {line["logger"] for line in lines}
    assert "gunicorn.error" in loggers  # gunicorn's own lines come through ours
    assert "gunicorn.access" not in loggers  # its access line would show the path
    access = {line["request_id"]: line for line in lines if line["logger"] == "traction.access"}
    for request_id, (method, status) in sent.items():
        line = access[request_id]
        assert (line["method"], line["status"]) == (method, status)
        assert line["remote_addr"] == "127.0.0.1"
        assert line["latency_ms"] >= 0
    post, read, refused, health, unmatched = (access[request_id] for request_id in sent)
    assert post["route"] == "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events"
    assert post["token_id"] == read["token_id"] == record.token_id
    assert refused["token_id"] is None
    assert (health["route"], unmatched["route"]) == ("/healthz", None)

    everything = "\n".join(server.lines)
    # The secret is URL-safe base64 and may itself hold "_", so take it by
    # position (tl_<16 hex id>_<secret>), not by splitting on "_".
    secret = token[len("tl_") + 16 + 1:]
    assert len(secret) == 43
    for forbidden in (token, secret, str(pid), "pt-secret-42", "version=1"):
        assert forbidden not in everything
