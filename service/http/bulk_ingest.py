"""Bulk ingest: an NDJSON upload read line by line, recorded a chunk at a time,
answered line by line as it goes.

Memory stays bounded whatever the upload's size: the body is read in blocks,
a chunk of lines (at most CHUNK_LINES, CHUNK_BYTES of text) is validated and
recorded in one transaction (`Programmes.record_posts`) and answered, then the
next. Each line succeeds or fails alone and gets its own result line; the
answer ends with a summary line.

- A line is checked as a single post's body is (strict JSON; the envelope's
  schema, plus its `programme_id` and optional `expected_version`): a broken
  line gets its own problem and the rest go on. A line longer than the body
  limit of a single post is refused alone (413) and skipped.
- Past the upload's limit (or a body that stops arriving, or cannot be read)
  the lines read so far are answered, then a result line with the problem
  (413, 408, 400) cuts the answer, whose summary says it is not complete.
- A line is answered only once its chunk is committed: a client that goes
  away has lost nothing it was told was recorded (what it was not told
  about is answered 200 with its receipt when it sends it again).
- A chunk that cannot be recorded (the store unreachable, or any other
  failure) cuts the answer the same way, at its first line: a 503 result
  line (500 for anything but the store), never a broken stream.

A client should read the answer while it sends the upload. One that reads
only afterwards still gets every line: while it does not read, the answer
waits in a spool (in memory up to SPOOL_MEMORY_BYTES, then in a temporary
file) and follows once the upload has been read.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import select
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from marshmallow import ValidationError

from domain.application import EventEnvelope, Post, Programmes, Receipt
from domain.programme import EVENT_ID_TEXTS
from service.http.problems import Problem, problem_for, store_unavailable, validation_problem
from service.http.request_body import BODY_IDLE_SECONDS, parse_json_strictly
from service.http.schemas.bulk import BulkLineSchema
from service.storage.clinic_positions import ClinicPositions
from service.storage.errors import UNREACHABLE

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
#: Lines recorded in one transaction, at most.
CHUNK_LINES = 1000
#: Bytes of line text in one chunk, at most.
CHUNK_BYTES = 4 * 1024 * 1024
#: Bytes read at a time: of a line over the limit, and of the spooled answer.
READ_BLOCK = 64 * 1024
#: Bytes of answer held in memory for a client that is not reading; then a file.
SPOOL_MEMORY_BYTES = 1024 * 1024
#: At most this much answer is handed to the server at once while the upload
#: still arrives: a client that sends without reading fills the socket's
#: buffers, and a larger write would then wait for it for ever.
WRITE_PIECE = 16 * 1024
#: How long the answer waits for a client to read before it goes to the spool.
READ_GRACE_SECONDS = 2.0

#: Allocations between two runs of the cyclic garbage collector's youngest
#: generation while an upload is ingested (Python's default: 700). An upload
#: allocates a few dozen objects per line and keeps none of them but the
#: programmes it caches: at 700 the collector took a third of its CPU. A chunk
#: holds 10,000-20,000 of them until it is answered: at 10,000 the collector
#: still ran in every chunk, found them all alive and moved them to the older
#: generations, whose runs walk the whole heap (3-5 µs a line in all); at
#: 50,000 it runs about once every 10,000 lines (0.5 µs a line).
GC_ALLOCATIONS = 50_000

LINE_SCHEMA = BulkLineSchema()

#: Whether a UUID's text is the one str(UUID) makes of it (lower-case hex, dashed 8-4-4-4-12).
CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


class _CollectLess:
    """While at least one upload is ingested in this process: the cyclic garbage
    collector's youngest generation runs every GC_ALLOCATIONS allocations. The
    garbage it leaves a little longer is a few MB at most; the rest of the
    process is collected as before once the last upload ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploads = 0
        self._before: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def during_upload(self) -> Iterator[None]:
        with self._lock:
            self._uploads += 1
            if self._uploads == 1:
                self._before = gc.get_threshold()
                gc.set_threshold(max(GC_ALLOCATIONS, self._before[0]), *self._before[1:])
        try:
            yield
        finally:
            with self._lock:
                self._uploads -= 1
                if self._uploads == 0 and self._before is not None:
                    gc.set_threshold(*self._before)
                    self._before = None


collect_less = _CollectLess()


@dataclass(frozen=True)
class Limits:
    upload_bytes: int  # TRACTION_MAX_BULK_BYTES
    line_bytes: int  # TRACTION_MAX_BODY_BYTES: a line is no larger than a single post


class Cut(Exception):
    """The upload ends here: the lines before are answered, then this problem."""

    def __init__(self, line: int, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.line = line
        self.problem = problem


def too_large(limit: int, what: str) -> Problem:
    return Problem(413, "request-entity-too-large", "Request Entity Too Large",
                   f"{what} is larger than {limit} bytes.")


def read_lines(body: IO[bytes], limits: Limits) -> Iterator[tuple[int, bytes | Problem]]:
    """The upload's lines, numbered from 1 (blank ones skipped, but counted), as
    they arrive; a line over the line limit as its 413 problem. Raises Cut where
    the upload must stop: past its limit, stalled, or unreadable."""
    number = 0
    received = 0
    while True:
        number += 1
        line = _read(body, limits.line_bytes + 1, number)
        if not line:
            return
        received += len(line)
        too_long = len(line) - line.endswith(b"\n") > limits.line_bytes
        while too_long and not line.endswith(b"\n"):  # skip the rest of it
            line = _read(body, READ_BLOCK, number)
            received += len(line)
            if not line:
                break
        if received > limits.upload_bytes:
            raise Cut(number, too_large(limits.upload_bytes, "The upload"))
        if too_long:
            yield number, too_large(limits.line_bytes, "This line")
        elif line.strip():
            yield number, line.strip()


def _read(body: IO[bytes], size: int, number: int) -> bytes:
    """A line of the body, or `size` bytes of one (b"" at its end)."""
    try:
        return body.readline(size)
    except TimeoutError:
        raise Cut(number, Problem(
            408, "request-timeout", "Request Timeout",
            f"The upload stopped arriving for {BODY_IDLE_SECONDS:g} seconds; send the lines "
            "from this one on again.")) from None
    except Exception as error:  # noqa: BLE001 - the server's parser failed, or the client
        raise Cut(number, Problem(400, "malformed-body", "Malformed request body",
                                  f"The upload cannot be read from this line on: {error}.")
                  ) from None


def parse_line(line: bytes) -> Post | Problem:
    """A line as a post, or the problem a single post of it would have been answered."""
    try:
        value = parse_json_strictly(line)
    except Problem as problem:
        return problem
    if not isinstance(value, dict):
        return validation_problem({"_schema": ["Each line must be a JSON object."]})
    try:
        loaded = LINE_SCHEMA.load(value)
    except ValidationError as error:
        return validation_problem(error.messages)
    programme_id = loaded.pop("programme_id")
    expected_version = loaded.pop("expected_version", None)
    text = value["event_id"]
    if type(text) is str and CANONICAL_UUID(text):
        # The line's text is what str(event_id) would make: its receipt and its
        # programme's entries use it (domain.programme.EVENT_ID_TEXTS).
        EVENT_ID_TEXTS.remember(loaded["event_id"], text)
    return Post(programme_id, [EventEnvelope(**loaded)], expected_version)


@dataclass
class Summary:
    lines: int = 0
    recorded: int = 0
    replayed: int = 0
    failed: int = 0

    def result(self, number: int, outcome: Receipt | Problem,
               receipt_body: dict[str, Any] | None = None) -> bytes:
        """The answer's line for one upload line (and count it); a receipt is sent
        as `receipt_body` (its clinic's positions) when given."""
        self.lines += 1
        if isinstance(outcome, Receipt):
            status = 200 if outcome.replayed else 201
            if outcome.replayed:
                self.replayed += 1
            else:
                self.recorded += 1
            return encode_receipt_line({"line": number, "status": status,
                                        "receipt": receipt_body or outcome.body()})
        self.failed += 1
        return encode({"line": number, "status": outcome.status,
                       "problem": outcome.document()})

    def last_line(self, *, complete: bool) -> bytes:
        return encode({"summary": {"lines": self.lines, "recorded": self.recorded,
                                   "replayed": self.replayed, "failed": self.failed,
                                   "complete": complete}})


#: json.dumps(value, separators=(",", ":")), without a new encoder per line.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def encode(value: dict[str, Any]) -> bytes:
    return _COMPACT.encode(value).encode() + b"\n"


def encode_receipt_line(value: dict[str, Any]) -> bytes:
    """`encode(value)` for a receipt's line, written by orjson in a seventh of the time.

    A receipt holds strs and ints only (Receipt.body(), ClinicPositions), which
    orjson writes as the standard library does, but for the characters
    ensure_ascii escapes (beyond ASCII, and DEL) and ints beyond 64 bits: a line
    with any of them is written by `encode` (tests/api/test_bulk_encoding.py)."""
    try:
        line = orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return encode(value)
    return line if line.isascii() and b"\x7f" not in line else encode(value)


@dataclass
class Answer:
    """Where the answer's lines go while the upload still arrives: to the client
    as long as it reads, else to a spool that follows once the upload is read."""

    sock: socket.socket | None
    spool: IO[bytes] | None = None
    spooled: bool = field(default=False)

    def send(self, data: bytes) -> Iterator[bytes]:
        """Pieces to hand to the server now (the rest spooled)."""
        for start in range(0, len(data), WRITE_PIECE):
            piece = data[start:start + WRITE_PIECE]
            if not self.spooled and self._client_reads(READ_GRACE_SECONDS):
                yield piece
                continue
            if self.spool is None:
                self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
            self.spooled = True
            self.spool.write(piece)

    def _client_reads(self, wait: float) -> bool:
        """Whether the client takes more of the answer, within `wait` seconds."""
        if self.sock is None:
            return True  # no socket of ours (a test client): nothing to wait for
        try:
            return bool(select.select([], [self.sock], [], wait)[1])
        except (OSError, ValueError):
            return True  # a closed socket: the server finds out when it writes

    def drain(self) -> Iterator[bytes]:
        """The spooled answer (the upload has been read: the client reads now)."""
        if self.spool is None:
            return
        self.spool.seek(0)
        while piece := self.spool.read(READ_BLOCK):
            yield piece
        self.spool.close()
        self.spool, self.spooled = None, False


def ingest(programmes: Programmes, positions: ClinicPositions, clinic_id: str, body: IO[bytes],
           limits: Limits, sock: socket.socket | None) -> Iterator[bytes]:
    """The answer to an upload, line by line, as its chunks are recorded."""
    with collect_less.during_upload():
        yield from _answer(programmes, positions, clinic_id, body, limits, sock)


def _answer(programmes: Programmes, positions: ClinicPositions, clinic_id: str, body: IO[bytes],
            limits: Limits, sock: socket.socket | None) -> Iterator[bytes]:
    summary = Summary()
    answer = Answer(sock)
    previous_timeout = sock.gettimeout() if sock is not None else None
    if sock is not None:
        # gunicorn hands over its socket blocking with no timeout: a body that
        # stalls would hold this thread for ever.
        sock.settimeout(BODY_IDLE_SECONDS)
    complete = True
    try:
        chunk: list[tuple[int, Post | Problem]] = []
        size = 0
        cut: Cut | None = None
        try:
            for number, line in read_lines(body, limits):
                chunk.append((number, line if isinstance(line, Problem) else parse_line(line)))
                size += len(line) if isinstance(line, bytes) else 0
                if len(chunk) >= CHUNK_LINES or size >= CHUNK_BYTES:
                    full, chunk, size = chunk, [], 0
                    yield from answer.send(record(programmes, positions, clinic_id, full,
                                                  summary))
        except Cut as stop:
            cut = stop  # reading stopped (the lines read are still recorded), or a chunk failed
        try:
            yield from answer.send(record(programmes, positions, clinic_id, chunk, summary))
        except Cut as stop:
            cut = stop
        if cut is not None:
            complete = False
            yield from answer.send(summary.result(cut.line, cut.problem))
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous_timeout)
    yield from answer.drain()
    yield summary.last_line(complete=complete)


def record(programmes: Programmes, positions: ClinicPositions, clinic_id: str,
           chunk: list[tuple[int, Post | Problem]], summary: Summary) -> bytes:
    """Record a chunk's posts in one go; its result lines, in order (receipts with
    the clinic's positions, looked up in one query). Cut at its first line if it
    cannot be recorded."""
    if not chunk:
        return b""
    posts = [item for _, item in chunk if isinstance(item, Post)]
    try:
        outcomes = programmes.record_posts(clinic_id, posts) if posts else []
        bodies = positions.receipts(clinic_id, [outcome for outcome in outcomes
                                                if isinstance(outcome, Receipt)])
    except Exception as error:  # noqa: BLE001 - answered as the cut it is, and logged
        raise Cut(chunk[0][0], not_recorded(error)) from error
    answers = iter(outcomes)
    results = []
    for number, item in chunk:
        if isinstance(item, Problem):
            results.append(summary.result(number, item))
            continue
        outcome = next(answers)
        results.append(summary.result(number, outcome, bodies[id(outcome)]) if isinstance(
            outcome, Receipt) else summary.result(number, problem_for(outcome)))
    return b"".join(results)


def not_recorded(error: Exception) -> Problem:
    """The problem that cuts an upload at a chunk that failed. Its transaction
    rolled back, but a failure after the commit (reading the receipts' positions)
    leaves its lines recorded: either way, sending them again is safe."""
    again = ("Send the lines from this one on again: any of them recorded before "
             "are answered 200 with their receipts.")
    if isinstance(error, UNREACHABLE):
        log.warning("a bulk chunk was not recorded, the store unavailable: %s", error)
        return store_unavailable(2, "The database cannot be reached right now: these lines "
                                    f"may not be recorded. {again}")
    log.error("a bulk chunk was not recorded", exc_info=error)
    return Problem(500, "internal-error", "Internal server error",
                   f"These lines may not be recorded; it has been logged. {again}")
