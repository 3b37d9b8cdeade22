"""A Python client generated from /openapi.json works as an integrator would use it.

`openapi-python-client` generates the client from the real app's document,
offline, into a temporary directory; the test then uses it against a real app
(through httpx's WSGI transport) on both stores: start a programme, post a
single event and a batch, read the history and a dashboard, and get a typed
Problem for a bad event. A change to the document that breaks generated
clients, or makes the generator skip a part of it, fails here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from service.http.app import create_app
from tests.stores import RunnerAt, components_at, initialise

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "traction_ledger_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Iterator[ModuleType]:
    """The client package, generated from the real app's /openapi.json and imported."""
    where = tmp_path_factory.mktemp("client")
    url = f"sqlite:///{where}/ledger.sqlite"
    initialise(url)
    components = components_at(url)
    try:
        document = create_app(components).test_client().get("/openapi.json").json
    finally:
        components.close()
    (where / "openapi.json").write_text(json.dumps(document))
    # No formatting hooks: the generated code is used, not read. The generator does
    # not know NDJSON (the bulk route's body): the README tells integrators this line.
    (where / "config.yaml").write_text(
        f"post_hooks: []\npackage_name_override: {PACKAGE}\n"
        "content_type_overrides: {application/x-ndjson: application/octet-stream}\n")
    done = subprocess.run(
        [GENERATOR, "generate", "--path", str(where / "openapi.json"), "--meta", "none",
         "--output-path", str(where / PACKAGE), "--config", str(where / "config.yaml")],
        capture_output=True, text=True, timeout=300, cwd=where)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The generator goes on past what it cannot read, and says so: that is a failure.
    assert "Warning" not in output and "Error" not in output, output
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def model(name: str) -> type:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def operation(tag: str, operation_id: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


@pytest.fixture
def connect(generated, app, tokens):
    """A generated client for a role's token, talking to the real app."""

    def client(headers: dict[str, str]):
        token = headers["Authorization"].removeprefix("Bearer ")
        return generated.AuthenticatedClient(
            base_url="http://traction.test", token=token,
            httpx_args={"transport": httpx.WSGITransport(app=app)})

    return client


def test_a_generated_client_records_and_reads_a_programme(connect, tokens, store_url):
    writer, viewer = connect(tokens.writer_a), connect(tokens.viewer_a)
    post_events = operation("events", "post_events")
    programme_id = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(days=3)

    started = post_events.sync(
        "clinic-a", programme_id, client=writer,
        body=model("ProgrammeStartedPost")(
            event_id=uuid.uuid4(), type_=model("ProgrammeStartedPostType").PROGRAMMESTARTED,
            occurred_at=start, recorded_by="ehr.bridge", expected_version=0,
            data=model("ProgrammeStartedData")(
                patient_ref="pt-0042",
                condition=model("ProgrammeStartedDataCondition").SCIATICA,
                setting=model("ProgrammeStartedDataSetting").IN_OFFICE,
                plan=model("ProgrammeStartedPlan")(
                    modality=model("ProgrammeStartedPlanModality").MECHANICAL_TABLE,
                    sessions_per_week=3, minutes_per_session=30, force_percent_body_weight=30),
                baseline=model("ProgrammeStartedBaseline")(pain_nrs=7, odi_percent=44))))
    assert isinstance(started, model("Receipt")), started
    assert started.version == 1

    session = model("SessionCompletedEvent")(
        event_id=uuid.uuid4(), type_=model("SessionCompletedEventType").SESSIONCOMPLETED,
        occurred_at=start + timedelta(days=1), recorded_by="ehr.bridge",
        data=model("SessionCompletedData")(
            modality=model("SessionCompletedDataModality").MECHANICAL_TABLE,
            duration_minutes=30, supervised=True, force_percent_body_weight=30,
            discomfort_nrs=3))
    report = model("PainReportedEvent")(
        event_id=uuid.uuid4(), type_=model("PainReportedEventType").PAINREPORTED,
        occurred_at=start + timedelta(days=1, minutes=40), recorded_by="ehr.bridge",
        data=model("PainReportedData")(
            pain_nrs=4, context=model("PainReportedDataContext").AFTER_SESSION))
    batch = post_events.sync("clinic-a", programme_id, client=writer,
                             body=model("EventBatch")(events=[session, report],
                                                      expected_version=1))
    assert isinstance(batch, model("Receipt")), batch
    assert [r.version for r in batch.recorded] == [2, 3]

    history = operation("programmes", "get_history").sync("clinic-a", programme_id,
                                                          client=viewer)
    assert [e.type_ for e in history.events] == [
        "ProgrammeStarted", "SessionCompleted", "PainReported"]
    assert history.events[2].data["pain_nrs"] == 4

    RunnerAt(store_url).run(once=True)
    dashboard = operation("dashboards", "clinic_dashboard").sync(
        "clinic-a", client=viewer, min_position=batch.recorded[-1].position)
    assert isinstance(dashboard, model("ClinicDashboard")), dashboard
    assert (dashboard.programmes, dashboard.sessions_completed, dashboard.responders) == (
        1, 1, 1)


def test_a_bad_event_gets_a_typed_problem(connect, tokens):
    writer = connect(tokens.writer_a)
    post_events = operation("events", "post_events")
    bad = model("PainReportedPost")(
        event_id=uuid.uuid4(), type_=model("PainReportedPostType").PAINREPORTED,
        occurred_at=datetime.now(UTC), recorded_by="ehr.bridge",
        data=model("PainReportedData")(pain_nrs=11))  # the client does not check ranges
    problem = post_events.sync("clinic-a", uuid.uuid4(), client=writer, body=bad)
    assert isinstance(problem, model("Problem")), problem
    assert (problem.status, problem.type_) == (
        422, "urn:traction-ledger:problem:validation-failed")
    assert [(e.pointer, e.detail) for e in problem.errors] == [
        ("/data/pain_nrs", "Must be greater than or equal to 0 and less than or equal to 10.")]
    missing = operation("programmes", "get_programme").sync("clinic-a", uuid.uuid4(),
                                                           client=writer)
    assert isinstance(missing, model("Problem")) and missing.status == 404
