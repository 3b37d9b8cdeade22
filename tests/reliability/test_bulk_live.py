"""Bulk ingest through gunicorn, on both stores: the answer streams while the
upload still arrives; a client that reads only after sending gets every line
all the same; one that goes away has lost nothing it was told was recorded;
past the upload limit the answer is cut with 413 after the lines answered;
uploads sent at once (their own programmes, or the same lines) store each
event once."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import uuid
from typing import Any

import pytest

from service.http.bulk_ingest import CHUNK_LINES
from tests import builders as b
from tests.reliability import invariants
from tests.reliability.contention import CLINIC
from tests.reliability.live import HOST, LiveServer
from tests.stores import throwaway_postgres_schema

pytestmark = pytest.mark.slow
BULK = f"/v1/clinics/{CLINIC}/events:bulk"
WAIT = 120  # seconds: generous, the machine is shared; never a measure


def upload(programmes: int, lines: int) -> list[dict[str, Any]]:
    """`lines` lines over `programmes` programmes, interleaved, each started first."""
    ids = [uuid.uuid4() for _ in range(programmes)]
    sent = [{**b.started(), "programme_id": str(p)} for p in ids]
    for n in range(lines - programmes):
        event = b.session(1 + n / 1000) if n % 3 else b.pain(n % 11, 1 + n / 1000)
        sent.append({**event, "programme_id": str(ids[n % programmes])})
    return sent


def encoded(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


class StreamingUpload:
    """A client that sends a chunked upload and reads the answer as it comes."""

    def __init__(self, port: int, token: str, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(WAIT)
        self.sock.connect((HOST, port))
        self.sock.sendall((
            f"POST {BULK} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode())
        self.answered: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        self.error: BaseException | None = None
        self.status: int | None = None

    def read_as_it_comes(self) -> threading.Thread:
        thread = threading.Thread(target=self._read, daemon=True)
        thread.start()
        return thread

    def _read(self) -> None:
        try:
            response = http.client.HTTPResponse(self.sock, method="POST")
            response.begin()
            self.status = response.status
            while line := response.readline():
                with self.arrived:
                    self.answered.append(json.loads(line))
                    self.arrived.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.error = error
        with self.arrived:
            self.arrived.notify_all()

    def send(self, data: bytes) -> None:
        for start in range(0, len(data), 65536):
            piece = data[start:start + 65536]
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))

    def end(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()

    def wait_for(self, count: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.answered) >= count or self.error,
                                         timeout=WAIT), f"only {len(self.answered)} answered"
        assert self.error is None, self.error


def stored_once(database_url: str, event_ids: list[str]) -> None:
    log = invariants.read_stored_log(database_url)
    invariants.check_log_shape(log)
    found = [e.event_id for e in log.ledger if e.event_id in set(event_ids)]
    assert sorted(found) == sorted(event_ids), "an event is missing or stored twice"


def test_the_answer_streams_while_the_upload_still_arrives(live):
    lines = upload(300, CHUNK_LINES + 500)
    client = StreamingUpload(live.server.port, live.tokens.writer[CLINIC])
    reader = client.read_as_it_comes()
    client.send(encoded(lines[:CHUNK_LINES + 1]))
    # The first chunk is answered before the rest of the upload is even sent.
    client.wait_for(CHUNK_LINES)
    assert client.status == 200
    client.send(encoded(lines[CHUNK_LINES + 1:]))
    client.end()
    reader.join(WAIT)
    client.close()
    results, summary = client.answered[:-1], client.answered[-1]["summary"]
    assert [r["line"] for r in results] == list(range(1, len(lines) + 1))
    assert {r["status"] for r in results} == {201}
    assert summary == {"lines": len(lines), "recorded": len(lines), "replayed": 0, "failed": 0,
                       "complete": True}
    stored_once(live.database_url, [line["event_id"] for line in lines])


def test_a_client_that_reads_only_after_sending_gets_every_line(live):
    """http.client sends the whole body before it reads (the spool's own test,
    where the sockets' buffers fill up, is tests/api/test_bulk_spool.py)."""
    count = 3 * CHUNK_LINES
    lines = upload(1000, count)
    connection = http.client.HTTPConnection(HOST, live.server.port, timeout=WAIT)
    connection.request("POST", BULK, body=encoded(lines), headers={
        "Authorization": f"Bearer {live.tokens.writer[CLINIC]}",
        "Content-Type": "application/x-ndjson"})
    response = connection.getresponse()
    answer = [json.loads(text) for text in response.read().splitlines()]
    connection.close()
    assert response.status == 200
    assert [r["line"] for r in answer[:-1]] == list(range(1, count + 1))
    assert answer[-1]["summary"]["recorded"] == count


def test_a_client_that_goes_away_loses_nothing_it_was_told(live):
    lines = upload(200, 3 * CHUNK_LINES)
    client = StreamingUpload(live.server.port, live.tokens.writer[CLINIC])
    client.read_as_it_comes()
    client.send(encoded(lines[:2 * CHUNK_LINES + 10]))
    client.wait_for(CHUNK_LINES)
    told = [r for r in client.answered if r.get("status") == 201]
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    client.sock.close()  # a reset, mid-upload
    stored_once(live.database_url, [lines[r["line"] - 1]["event_id"] for r in told])

    # Sent again, whole: what it was told about is answered with its receipt.
    connection = http.client.HTTPConnection(HOST, live.server.port, timeout=WAIT)
    connection.request("POST", BULK, body=encoded(lines), headers={
        "Authorization": f"Bearer {live.tokens.writer[CLINIC]}",
        "Content-Type": "application/x-ndjson"})
    again = [json.loads(text) for text in connection.getresponse().read().splitlines()]
    connection.close()
    by_line = {r["line"]: r for r in again[:-1]}
    for result in told:
        assert by_line[result["line"]]["status"] == 200
        assert by_line[result["line"]]["receipt"] == result["receipt"]
    assert {r["status"] for r in again[:-1]} <= {200, 201}
    stored_once(live.database_url, [line["event_id"] for line in lines])


@pytest.fixture
def limited(request, tmp_path):
    """A server whose uploads may be at most 64 KiB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.sqlite"
        yield from _one_worker_server(url, LIMITED)
        return
    from tests.conftest import _postgres_base_url

    with throwaway_postgres_schema(_postgres_base_url()) as url:
        yield from _one_worker_server(url, LIMITED)


LIMITED = {"TRACTION_MAX_BULK_BYTES": str(64 * 1024)}


def _one_worker_server(url: str, env: dict[str, str]) -> Any:
    """A bootstrapped store and a one-worker server on it with `env`, stopped after."""
    from tests.reliability.live import bootstrap

    tokens = bootstrap(url)
    server = LiveServer(url, 1, env=env)
    try:
        yield server, tokens, url
    finally:
        server.stop()
        server.remove_log()


@pytest.mark.parametrize("limited", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)],
                         indirect=True)
def test_past_the_limit_the_answer_is_cut_after_the_lines_answered(limited):
    server, tokens, url = limited
    lines = upload(10, 400)
    body = encoded(lines)
    within = len(body[:64 * 1024].split(b"\n")) - 1
    client = StreamingUpload(server.port, tokens.writer[CLINIC])
    reader = client.read_as_it_comes()
    try:
        client.send(body)
        client.end()
    except OSError:
        pass  # the server may stop reading, and close, once it has cut the upload
    reader.join(WAIT)
    client.close()
    results, summary = client.answered[:-1], client.answered[-1]["summary"]
    assert [r["status"] for r in results] == [201] * within + [413]
    assert results[-1]["problem"]["type"].endswith("request-entity-too-large")
    assert summary["complete"] is False and summary["recorded"] == within
    stored_once(url, [line["event_id"] for line in lines[:within]])


def _send_at_once(port: int, token: str, bodies: list[bytes]) -> list[list[dict[str, Any]]]:
    """Each body as its own upload, all sent at the same time, each on its own
    connection (the two workers take one each); every upload's answer lines."""
    clients = [StreamingUpload(port, token) for _ in bodies]
    try:
        readers = [client.read_as_it_comes() for client in clients]
        senders = [threading.Thread(target=lambda c=client, d=body: (c.send(d), c.end()))
                   for client, body in zip(clients, bodies, strict=True)]
        for sender in senders:
            sender.start()
        for sender, reader in zip(senders, readers, strict=True):
            sender.join(WAIT)
            reader.join(WAIT)
    finally:
        for client in clients:
            client.close()
    for client in clients:
        assert client.error is None, client.error
        assert client.status == 200
    return [client.answered for client in clients]


def test_uploads_of_their_own_programmes_sent_at_once_are_all_recorded(live):
    """The README's advice for a faster sync: several uploads at once, each with
    its own programmes. Both workers write; nothing is lost, refused or doubled,
    and every receipt is what the store holds."""
    uploads = [upload(150, 2 * CHUNK_LINES + 300) for _ in range(2)]
    answers = _send_at_once(live.server.port, live.tokens.writer[CLINIC],
                            [encoded(lines) for lines in uploads])
    for lines, answer in zip(uploads, answers, strict=True):
        assert [r["line"] for r in answer[:-1]] == list(range(1, len(lines) + 1))
        assert {r["status"] for r in answer[:-1]} == {201}
        assert answer[-1]["summary"]["recorded"] == len(lines)
    log = invariants.read_stored_log(live.database_url)
    invariants.check_log_shape(log)
    sent = [line["event_id"] for lines in uploads for line in lines]
    assert invariants.check_receipts(
        log, [r["receipt"] for answer in answers for r in answer[:-1]]) == len(sent)
    stored_once(live.database_url, sent)


def test_the_same_upload_sent_twice_at_once_stores_each_event_once(live):
    """A sync retried while its first attempt still runs: each line is recorded by
    one of the two uploads (201) and answered to the other as the replay it is
    (200, the same receipt), whichever worker got there first. Both start the same
    programmes, in different orders: their data keys were once made in each
    upload's order, and PostgreSQL failed one upload as a deadlock (a 500) in
    about one run in four."""
    lines = upload(100, CHUNK_LINES + 400)
    # The retry sends the programmes one after another (each one's lines still in
    # order): its chunks mix lines the first upload recorded with lines it has not.
    again = sorted(range(len(lines)), key=lambda n: lines[n]["programme_id"])
    first, second = _send_at_once(live.server.port, live.tokens.writer[CLINIC],
                                  [encoded(lines), encoded([lines[n] for n in again])])
    retried = {line: result for line, result in zip(again, second[:-1], strict=True)}
    for line, one in enumerate(first[:-1]):
        other = retried[line]
        assert sorted([one["status"], other["status"]]) == [200, 201], (one, other)
        assert one["receipt"] == other["receipt"]
    assert first[-1]["summary"]["recorded"] + second[-1]["summary"]["recorded"] == len(lines)
    log = invariants.read_stored_log(live.database_url)
    invariants.check_log_shape(log)
    invariants.check_receipts(log, [r["receipt"] for r in first[:-1]])
    stored_once(live.database_url, [line["event_id"] for line in lines])


def test_a_chunk_that_cannot_be_recorded_cuts_the_answer_with_a_problem(tmp_path):
    """The store will not take a chunk (another program holds SQLite's write lock
    past the service's lock timeout): the answer is cut at the chunk's first line
    with a 503 problem line and an incomplete summary (before, a broken stream or
    gunicorn's 500 page); what was answered is stored; sent again, it all is."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    started = _one_worker_server(url, {"TRACTION_SQLITE_LOCK_TIMEOUT": "1"})
    server, tokens, _ = next(started)
    try:
        lines = upload(50, 2 * CHUNK_LINES)
        client = StreamingUpload(server.port, tokens.writer[CLINIC])
        reader = client.read_as_it_comes()
        client.send(encoded(lines[:CHUNK_LINES + 1]))
        client.wait_for(CHUNK_LINES)
        holder = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held
        try:
            client.send(encoded(lines[CHUNK_LINES + 1:]))
            client.end()
            reader.join(WAIT)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            client.close()
        assert client.error is None and client.status == 200
        results, summary = client.answered[:-1], client.answered[-1]["summary"]
        assert [r["status"] for r in results] == [201] * CHUNK_LINES + [503]
        assert results[-1]["line"] == CHUNK_LINES + 1
        assert results[-1]["problem"]["type"].endswith("store-unavailable")
        assert summary == {"lines": CHUNK_LINES + 1, "recorded": CHUNK_LINES, "replayed": 0,
                           "failed": 1, "complete": False}
        stored_once(url, [line["event_id"] for line in lines[:CHUNK_LINES]])

        connection = http.client.HTTPConnection(HOST, server.port, timeout=WAIT)
        connection.request("POST", BULK, body=encoded(lines), headers={
            "Authorization": f"Bearer {tokens.writer[CLINIC]}",
            "Content-Type": "application/x-ndjson"})
        again = [json.loads(text) for text in connection.getresponse().read().splitlines()]
        connection.close()
        assert [r["status"] for r in again[:-1]] == [200] * CHUNK_LINES + [201] * CHUNK_LINES
        stored_once(url, [line["event_id"] for line in lines])
    finally:
        started.close()  # stops the server
