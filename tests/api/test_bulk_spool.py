"""The bulk answer's spool: while a client does not read, the answer waits in
memory, then a file, and follows, in order, once the upload has been read."""

from __future__ import annotations

import select
import socket

from service.http import bulk_ingest
from service.http.bulk_ingest import WRITE_PIECE, Answer


def full(sock: socket.socket) -> None:
    """Fill the socket's buffers: its peer does not read."""
    sock.setblocking(False)
    try:
        while select.select([], [sock], [], 0)[1]:
            sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)


def received(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    data = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    return bytes(data)


def test_the_answer_goes_straight_out_while_the_client_reads():
    server, client = socket.socketpair()
    with server, client:
        pieces = list(Answer(server).send(b"a" * (3 * WRITE_PIECE + 5)))
        assert [len(p) for p in pieces] == [WRITE_PIECE] * 3 + [5]


def test_an_answer_nobody_reads_is_spooled_and_follows_in_order(monkeypatch):
    monkeypatch.setattr(bulk_ingest, "READ_GRACE_SECONDS", 0.05)
    monkeypatch.setattr(bulk_ingest, "SPOOL_MEMORY_BYTES", 1000)  # to a file soon
    server, client = socket.socketpair()
    with server, client:
        full(server)
        answer = Answer(server)
        lines = [b"%06d\n" % n for n in range(20_000)]
        handed = [piece for line in lines for piece in answer.send(line)]
        assert handed == [] and answer.spooled
        received(client)  # the client reads at last: the buffers empty
        assert b"".join(answer.drain()) == b"".join(lines)
        assert not answer.spooled
        assert list(answer.send(b"after\n")) == [b"after\n"]
