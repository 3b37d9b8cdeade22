"""A Bulk export whose gunicorn worker is killed mid-way is taken over by another
worker and completes (a real `traction serve`, SIGKILL, gunicorn's respawn)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from domain.application import Post
from tests import builders as b
from tests.fhir.checks import parse
from tests.ops.serving import LoggedServer
from tests.stores import components_at, initialise

pytestmark = pytest.mark.slow

PROGRAMMES, EVENTS_EACH = 600, 100


def a_large_clinic(url: str) -> str:
    """600 programmes of 100 events in clinic-a; a viewer's token."""
    components = components_at(url)
    try:
        components.directory.add_clinic("clinic-a", "Clinic A")
        posts = []
        for _ in range(PROGRAMMES):
            events = [b.started()] + [
                b.session(day / 2) if day % 2 else b.pain(day % 10, day / 2)
                for day in range(1, EVENTS_EACH)]
            posts.append(Post(uuid.uuid4(), b.event_envelopes(*events)))
        for start in range(0, PROGRAMMES, 100):
            answers = components.programmes.record_posts("clinic-a", posts[start:start + 100])
            assert all(not isinstance(a, Exception) for a in answers), answers
        return components.directory.issue_token("viewer", "clinic-a", "export test")[1]
    finally:
        components.close()


def test_an_export_whose_worker_is_killed_is_taken_over_and_completes(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    initialise(url)
    token = a_large_clinic(url)
    auth = {"Authorization": f"Bearer {token}"}
    server = LoggedServer(url, 2)
    try:
        status, body, headers = server.call("GET", "/v1/clinics/clinic-a/fhir/$export",
                                            headers={**auth, "Prefer": "respond-async"})
        assert status == 202, body
        location = headers["Content-Location"].split(str(server.port), 1)[1]
        status, body, headers = server.call("GET", location, headers=auth)
        assert status == 202, "the export ended before its worker could be killed"
        killed = server.worker_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            try:
                status, body, headers = server.call("GET", location, headers=auth)
            except OSError:
                status = 0  # the workers are being respawned
            if status not in (0, 202):
                break
            time.sleep(1)
        assert status == 200, body
        assert not set(killed) & set(server.worker_pids())
        manifest = json.loads(body)
        counts = {item["type"]: item["count"] for item in manifest["output"]}
        assert counts["EpisodeOfCare"] == PROGRAMMES
        # The baseline and every other event's report, once each: nothing twice.
        assert counts["Observation"] == PROGRAMMES * (1 + (EVENTS_EACH - 1) // 2)
        observation = next(i["url"] for i in manifest["output"] if i["type"] == "Observation")
        status, text, _ = server.call("GET", observation.split(str(server.port), 1)[1],
                                      headers=auth, timeout=60)
        assert status == 200
        lines = text.splitlines()
        assert len(lines) == counts["Observation"]
        for line in lines[:: len(lines) // 50]:
            parse(json.loads(line))
        assert any("taken over" in line or "left by a stopped process" in line
                   for line in server.lines)
    finally:
        server.stop()
