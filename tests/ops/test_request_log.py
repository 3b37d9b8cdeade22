"""One JSON access line per request, and a request id on every response."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest

from service.http import request_log
from service.http.access import public
from service.http.request_log import JsonFormatter, TextFormatter, logging_config
from tests import builders as b
from tests.stores import initialise

GENERATED = re.compile(r"[0-9a-f]{32}")
PROGRAMME_ROUTE = "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>"


@pytest.fixture
def store_url(sqlite_url) -> str:
    """The request log does not depend on the store: SQLite only."""
    initialise(sqlite_url)
    return sqlite_url


def access_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == request_log.ACCESS_LOGGER]


@pytest.mark.parametrize("request_id", ["abc-123", "A.b_C-9", "x" * 128, "0"])
def test_a_valid_client_request_id_is_echoed(client, request_id):
    response = client.get("/healthz", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", [None, "", "has space", "x" * 129, "semi;colon",
                                        "quote\"", "ünïcode", "slash/es"])
def test_an_absent_or_unsafe_request_id_is_replaced(client, caplog, request_id):
    headers = {} if request_id is None else {"X-Request-ID": request_id}
    with caplog.at_level(logging.INFO, logger=request_log.ACCESS_LOGGER):
        response = client.get("/healthz", headers=headers)
    returned = response.headers["X-Request-ID"]
    assert GENERATED.fullmatch(returned)
    [line] = access_lines(caplog)
    assert line.fields["request_id"] == returned


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_the_request_id_is_on_error_responses_too(client, tokens):
    pid = uuid.uuid4()
    cases = [
        client.get("/no/such/route", headers={"X-Request-ID": "r-404"}),
        client.delete("/healthz", headers={"X-Request-ID": "r-405"}),
        client.get(f"/v1/clinics/clinic-a/programmes/{pid}", headers={"X-Request-ID": "r-401"}),
        client.get("/v1/clinics", headers={**tokens.writer_a, "X-Request-ID": "r-403"}),
        client.post(f"/v1/clinics/clinic-a/programmes/{pid}/events", data="{",
                    content_type="application/json",
                    headers={**tokens.writer_a, "X-Request-ID": "r-400"}),
        client.post(f"/v1/clinics/clinic-a/programmes/{pid}/events", json={"events": []},
                    headers={**tokens.writer_a, "X-Request-ID": "r-422"}),
    ]
    for response in cases:
        status = response.headers["X-Request-ID"].removeprefix("r-")
        assert str(response.status_code) == status
        assert response.headers["Content-Type"] == "application/problem+json"


class JsonLines(logging.Handler):
    """Formats as the service's stderr handler does: while the record is emitted."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines():
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler.lines
    root.setLevel(level)
    root.removeHandler(handler)


def test_the_request_id_is_on_an_unexpected_500(app, client, json_lines):
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", "boom", public(boom))
    response = client.get("/boom", headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "r-500"
    error, access = json_lines
    assert (access["logger"], access["status"], access["route"]) == (
        "traction.access", 500, "/boom")
    # The traceback's own line carries the request id too.
    assert (error["level"], error["request_id"]) == ("error", "r-500")
    assert "RuntimeError: a bug" in error["exception"]


def test_one_access_line_per_request_with_the_route_template(client, tokens, caplog):
    pid = uuid.uuid4()
    programme = f"/v1/clinics/clinic-a/programmes/{pid}"
    token = tokens.writer_a
    client.post(programme + "/events", json=b.started(patient_ref="pt-secret-42"),
                headers=token)
    with caplog.at_level(logging.INFO, logger=request_log.ACCESS_LOGGER):
        client.post(programme + "/events", json=b.session(1), headers=token,
                    environ_base={"REMOTE_ADDR": "10.9.8.7"})
        client.get(programme + "?version=1", headers={**token, "X-Request-ID": "read-1"})
        client.get(programme, headers={"Authorization": "Bearer tl_0123456789abcdef_nope"})
    post, read, refused = (line.fields for line in access_lines(caplog))

    assert post["method"] == "POST"
    assert post["route"] == PROGRAMME_ROUTE + "/events"
    assert post["status"] == 201
    assert post["token_id"] == token["X-Token-Id"]
    assert post["remote_addr"] == "10.9.8.7"
    assert isinstance(post["latency_ms"], float) and post["latency_ms"] > 0
    assert GENERATED.fullmatch(post["request_id"])
    assert (read["route"], read["status"], read["request_id"]) == (PROGRAMME_ROUTE, 200,
                                                                   "read-1")
    assert (refused["status"], refused["token_id"]) == (401, None)


def test_access_lines_hold_no_token_ids_of_patients_or_query_strings(client, tokens, caplog):
    pid = uuid.uuid4()
    programme = f"/v1/clinics/clinic-a/programmes/{pid}"
    secret = tokens.writer_a["Authorization"].removeprefix("Bearer ")
    with caplog.at_level(logging.INFO):
        client.post(programme + "/events", json=b.started(patient_ref="pt-secret-42"),
                    headers=tokens.writer_a)
        client.get(programme + "/events?as_of=2026-03-02T10:00:00Z", headers=tokens.writer_a)
        client.get(programme, headers={"Authorization": "Bearer " + secret[:-1] + "x"})
    lines = [JsonFormatter().format(r) for r in caplog.records]
    lines += [TextFormatter().format(r) for r in caplog.records]
    assert len(access_lines(caplog)) == 3
    for line in lines:
        # tl_<token id>_<secret>: the secret itself may contain "_".
        for forbidden in (secret, secret.split("_", 2)[2], str(pid), "pt-secret-42",
                          "as_of", "2026-03-02T10"):
            assert forbidden not in line


def test_json_lines_are_one_object_each_with_the_fields(client, caplog):
    with caplog.at_level(logging.INFO, logger=request_log.ACCESS_LOGGER):
        client.get("/healthz", headers={"X-Request-ID": "json-1"})
    [record] = access_lines(caplog)
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert {"time", "level", "logger", "message", "request_id", "method", "route", "status",
            "latency_ms", "token_id", "remote_addr"} <= set(line)
    assert (line["logger"], line["level"], line["route"], line["request_id"]) == (
        "traction.access", "info", "/healthz", "json-1")
    assert line["time"].endswith("Z")


def test_text_lines_show_the_fields_as_key_value(client, caplog):
    with caplog.at_level(logging.INFO, logger=request_log.ACCESS_LOGGER):
        client.get("/healthz", headers={"X-Request-ID": "text-1"})
    [record] = access_lines(caplog)
    text = TextFormatter().format(record)
    assert "traction.access: request request_id=text-1 method=GET route=/healthz " \
           "status=200 latency_ms=" in text
    assert "token_id=- " in text


def test_log_format_is_json_or_text():
    assert logging_config("json")["formatters"]["traction"]["()"].endswith("JsonFormatter")
    assert logging_config("text")["formatters"]["traction"]["()"].endswith("TextFormatter")
    with pytest.raises(ValueError, match="TRACTION_LOG_FORMAT"):
        logging_config("xml")


def test_gunicorn_access_lines_never_reach_the_output():
    config = logging_config("json", "warning")
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
    assert config["loggers"]["gunicorn.access"]["handlers"] == []
    # Our own access lines are written whatever the level.
    assert config["loggers"]["traction.access"]["level"] == "INFO"
