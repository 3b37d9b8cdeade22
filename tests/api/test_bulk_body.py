"""How bulk ingest reads the upload, through the real app called as gunicorn
calls it (the body and gunicorn's socket in the WSGI environ), on both stores:
a body that stalls is cut with 408, one that cannot be read with 400, anything
else met while reading is raised where the answer is iterated; an answer
closed early (its client went away) reads no further, records nothing it did
not tell, and hands gunicorn's socket back as it was."""

from __future__ import annotations

import io
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from service.http import bulk_ingest
from tests import builders as b

BULK = "/v1/clinics/clinic-a/events:bulk"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 2 lines, so that a few lines make several chunks."""
    monkeypatch.setattr(bulk_ingest, "CHUNK_LINES", 2)


def lines(programme: uuid.UUID, count: int) -> bytes:
    """`count` lines of one programme: its start, then sessions."""
    sent = [b.started()] + [b.session(1 + n / 100) for n in range(count - 1)]
    return b"".join(json.dumps({**envelope, "programme_id": str(programme)}).encode() + b"\n"
                    for envelope in sent)


def call(app, tokens, body: Any, sock: socket.socket | None = None) -> Iterator[bytes]:
    """The app's answer to an upload of `body` (a stream), as gunicorn runs it:
    no Content-Length, the body's end is the input's end."""
    environ = EnvironBuilder(path=BULK, method="POST", headers={
        **tokens.writer_a, "Content-Type": "application/x-ndjson"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True,
                    "HTTP_TRANSFER_ENCODING": "chunked"})
    if sock is not None:
        environ["gunicorn.socket"] = sock
    return app(environ, lambda status, *_: None)


@contextmanager
def stalled_upload(data: bytes) -> Iterator[tuple[socket.socket, Any]]:
    """gunicorn's socket and the body read from it: `data` sent, then nothing
    (the client's end stays open, so the body stalls rather than ends)."""
    server, peer = socket.socketpair()
    with server, peer:
        peer.sendall(data)
        with server.makefile("rb") as body:
            yield server, body


def results(pieces: bytes) -> list[dict[str, Any]]:
    return [json.loads(text) for text in pieces.decode().splitlines()]


def version(client, tokens, programme: uuid.UUID) -> int:
    return client.get(f"/v1/clinics/clinic-a/programmes/{programme}",
                      headers=tokens.viewer_a).json["version"]


class Breaks(io.BytesIO):
    """A body whose reading fails once its bytes are read: `error` is raised."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        super().__init__(data)
        self.error = error

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if not line:
            raise self.error
        return line


class Pulled(BaseException):
    """Nothing bulk ingest expects (as KeyboardInterrupt or SystemExit are not)."""


def test_a_body_that_stops_arriving_is_cut_with_408_after_the_lines_read(
        app, client, tokens, monkeypatch):
    monkeypatch.setattr(bulk_ingest, "BODY_IDLE_SECONDS", 0.2)
    programme = uuid.uuid4()
    with stalled_upload(lines(programme, 3)) as (server, body):
        answer = call(app, tokens, body, server)
        found = results(b"".join(answer))
        answer.close()
        assert server.gettimeout() is None, "gunicorn's socket is handed back as it was"
    assert [(r["line"], r["status"]) for r in found[:-1]] == [(1, 201), (2, 201), (3, 201),
                                                               (4, 408)]
    assert found[-2]["problem"]["type"].endswith("request-timeout")
    assert found[-1]["summary"] == {"lines": 4, "recorded": 3, "replayed": 0, "failed": 1,
                                    "complete": False}
    assert version(client, tokens, programme) == 3


def test_a_body_that_cannot_be_read_is_cut_with_400_after_the_lines_read(app, client, tokens):
    programme = uuid.uuid4()
    body = Breaks(lines(programme, 5), ConnectionResetError("reset by peer"))
    found = results(b"".join(call(app, tokens, body)))
    assert [(r["line"], r["status"]) for r in found[:-1]] == [(n, 201) for n in range(1, 6)] + [
        (6, 400)]
    assert found[-2]["problem"]["type"].endswith("malformed-body")
    assert "reset by peer" in found[-2]["problem"]["detail"]
    assert found[-1]["summary"]["complete"] is False
    assert version(client, tokens, programme) == 5


def test_what_reading_does_not_expect_is_raised_where_the_answer_is_read(
        app, client, tokens):
    """The chunks read before it are recorded and answered, the lines of the
    chunk it broke are not."""
    programme = uuid.uuid4()
    body = Breaks(lines(programme, 5), Pulled())
    answer = call(app, tokens, body)
    received = []
    with pytest.raises(Pulled):
        for piece in answer:
            received.append(piece)
    answer.close()
    assert [(r["line"], r["status"]) for r in results(b"".join(received))] == [
        (n, 201) for n in range(1, 5)]
    assert version(client, tokens, programme) == 4, "line 5's chunk was never recorded"


def test_an_answer_closed_early_reads_no_further_and_records_only_what_it_told(
        app, client, tokens, monkeypatch):
    monkeypatch.setattr(bulk_ingest, "CHUNK_LINES", 50)
    programme = uuid.uuid4()
    body = io.BytesIO(lines(programme, 1000))
    answer = call(app, tokens, body)
    first = next(iter(answer))
    assert [r["line"] for r in results(first)] == list(range(1, 51))
    read = body.tell()
    answer.close()  # the client went away
    assert body.tell() == read, "nothing more is read for an answer nobody takes"
    assert version(client, tokens, programme) == 50, "nothing recorded it was not told"


def test_an_answer_closed_while_the_body_stalls_hands_the_socket_back(
        app, client, tokens, monkeypatch):
    monkeypatch.setattr(bulk_ingest, "BODY_IDLE_SECONDS", 0.2)
    programme = uuid.uuid4()
    # Two chunks, and a line waiting for more.
    with stalled_upload(lines(programme, 5)) as (server, body):
        answer = call(app, tokens, body, server)
        first = next(iter(answer))
        assert [r["line"] for r in results(first)] == [1, 2]
        answer.close()
        assert server.gettimeout() is None
    assert version(client, tokens, programme) == 2
