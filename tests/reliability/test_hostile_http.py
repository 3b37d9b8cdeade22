"""R8 through a real gunicorn: hostile bodies get the right 4xx with a precise
problem document, nothing is recorded, and the process keeps serving.

tests/api/test_post_events.py covers the same ground through Flask's test
client; here the bytes go over a socket, so what gunicorn and werkzeug do
with framing (chunked bodies, limits, slow and stalled clients) counts too.
"""

from __future__ import annotations

import json

import pytest

from service.http.request_body import BODY_IDLE_SECONDS
from tests import builders as b
from tests.reliability.hostile import (
    HostileCase,
    hostile_cases,
    problem_mismatch,
    send_case,
    stalled_uploads,
    valid_post_path,
)
from tests.reliability.live import Answer, raw_exchange, request, request_head

pytestmark = pytest.mark.slow
CASES = hostile_cases()


def post(live, path, body):
    return request(live.server.port, "POST", path, body, live.tokens.writer["clinic-a"])


def still_serving(live) -> None:
    path, start = valid_post_path()
    answer = post(live, path, start)
    assert answer.status == 201, answer.raw


@pytest.fixture(scope="module")
def programme_path(live) -> str:
    """The events path of a started programme."""
    path, start = valid_post_path()
    assert post(live, path, start).status == 201
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_body_gets_a_precise_problem(live, programme_path, case: HostileCase):
    workers = live.server.worker_pids()
    answer = send_case(live.server.port, programme_path, live.tokens.writer["clinic-a"], case)
    assert problem_mismatch(case, answer) is None, problem_mismatch(case, answer)
    state = request(live.server.port, "GET", programme_path.removesuffix("/events"),
                    token=live.tokens.writer["clinic-a"])
    assert state.body["version"] == 1, "a hostile post recorded something"
    still_serving(live)
    assert live.server.worker_pids() == workers, "a worker died on the way"


def test_chunked_body_without_content_length_is_read(live):
    path, start = valid_post_path()
    body = json.dumps({"events": [start, b.session(1)]}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                       for i in range(0, len(body), 7)) + b"0\r\n\r\n"
    head = request_head("POST", path, live.tokens.writer["clinic-a"],
                        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    answer = raw_exchange(live.server.port, head, chunked)
    assert answer.status == 201, answer.raw
    assert answer.body["version"] == 2


def json_head(path: str, token: str, body: bytes) -> bytes:
    return request_head("POST", path, token, {"Content-Type": "application/json",
                                              "Content-Length": str(len(body))})


def test_a_slow_body_is_read_to_the_end(live):
    """A body trickled byte by byte over ~2 s (never idle for long) is recorded."""
    path, start = valid_post_path()
    body = json.dumps(start).encode()
    token = live.tokens.writer["clinic-a"]
    answer = raw_exchange(live.server.port, json_head(path, token, body), body,
                          trickle=2.0 / len(body), timeout=60)
    assert answer.status == 201, answer.raw


def test_stalled_bodies_hold_no_thread_for_long(live):
    """Bodies that stop arriving are refused with 408 after BODY_IDLE_SECONDS:
    with one holding every thread of the workers (2 x 4), a normal request
    waits for a thread, but it is answered (before, it waited for ever)."""
    stalled, normal, answered_after = stalled_uploads(
        live.server.port, live.tokens.writer["clinic-a"], stalls=8)
    assert normal.status == 201, normal.raw
    assert answered_after < BODY_IDLE_SECONDS + 8
    assert all(isinstance(a, Answer) for a in stalled), stalled
    for answer in stalled:
        assert answer.status == 408, answer.raw
        assert answer.body["type"] == "urn:traction-ledger:problem:request-timeout"
        assert answer.body["detail"]
    still_serving(live)
