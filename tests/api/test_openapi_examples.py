"""Every operation of the OpenAPI document reads well in a generated client and
shows an example of what it takes and gives; the examples are valid against
their own schemas, and they are the real answers for the programme they follow
(service/http/examples.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.http import examples
from tests.api.json_schema import misfits
from tests.stores import RunnerAt


@pytest.fixture
def document(client) -> dict[str, Any]:
    return client.get("/openapi.json").json


def operations(document: dict[str, Any]):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method != "parameters":
                yield f"{method.upper()} {path}", operation


def check(document: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    errors = misfits(document, schema, example)
    assert not errors, f"{where}: the example does not fit its schema: {errors[:3]}"


def test_every_operation_has_a_unique_operation_id_and_a_summary(document):
    ids = [operation["operationId"] for _, operation in operations(document)]
    assert len(ids) == len(set(ids)) == 20
    assert {"post_events", "get_history", "get_programme", "clinic_dashboard"} <= set(ids)
    for label, operation in operations(document):
        assert operation.get("summary"), f"{label} has no summary"


def test_every_request_and_answer_has_an_example_that_fits_its_schema(document):
    checked = 0
    for label, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            given = [e["value"] for e in body.get("examples", {}).values()]
            given += [body["example"]] if "example" in body else []
            assert given, f"{label}: no request example"
            for example in given:
                check(document, body["schema"], example, f"{label} request")
                checked += 1
        for status, response in operation["responses"].items():
            if "$ref" in response or not status.startswith("2"):
                continue
            for media, content in response.get("content", {}).items():
                assert "example" in content, f"{label} {status}: no example"
                if media == "application/json":
                    check(document, content["schema"], content["example"],
                          f"{label} {status}")
                    checked += 1
    for name, response in document["components"]["responses"].items():
        content = response.get("content", {}).get("application/problem+json")
        if content and "example" in content:
            check(document, content["schema"], content["example"], f"problem {name}")
            checked += 1
    assert checked >= 30


def strip(value: Any, *names: str) -> Any:
    """`value` without the members that differ from run to run (positions, record times)."""
    if isinstance(value, list):
        return [strip(item, *names) for item in value]
    if isinstance(value, dict):
        return {k: strip(v, *names) for k, v in value.items() if k not in names}
    return value


def test_the_examples_are_the_real_answers_for_their_programme(app, client, store_url):
    directory = app.extensions["traction"].directory
    directory.add_clinic(examples.CLINIC, "North Physio")
    _, token = directory.issue_token("writer", examples.CLINIC, "EHR bridge")
    writer = {"Authorization": f"Bearer {token}"}
    base = f"/v1/clinics/{examples.CLINIC}/programmes/{examples.PROGRAMME}"
    answers = [client.post(base + "/events", json=copy.deepcopy(post["value"]),
                           headers=writer) for post in examples.EVENT_POSTS.values()]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert strip(answers[1].json, "position") == strip(examples.RECEIPT, "position")
    assert client.get(base, headers=writer).json == examples.PROGRAMME_STATE
    history = client.get(base + "/events", headers=writer).json
    assert strip(history, "position", "recorded_at") == strip(
        examples.HISTORY, "position", "recorded_at")
    RunnerAt(store_url).run(once=True)
    summary = client.get(base + "/summary", headers=writer).json
    assert strip(summary, "position") == strip(examples.SUMMARY_DETAIL, "position")
