"""A live service for reliability tests: `traction serve` under gunicorn on a
free loopback port, its clinics and tokens, HTTP clients that retry, and the
process tree (to find the workers to kill).

Unlike tests/e2e/server.py, the server's stderr goes to a file: every request
writes an access line, and a pipe nobody reads fills up after a few hundred
requests and then blocks the workers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import parse_database_url
from tests.e2e.server import TRACTION, free_port
from tests.stores import SCRAPE_TOKEN, initialise

HOST = "127.0.0.1"  # loopback only: these tests never send traffic anywhere else
CLINICS = ("clinic-a", "clinic-b")
#: Errors that mean "the connection died under us" (a killed worker, a reset,
#: a timeout, a half-written answer).
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class Tokens:
    """Raw bearer tokens by role (writers and clinic viewers per clinic)."""

    writer: dict[str, str] = field(default_factory=dict)
    viewer: dict[str, str] = field(default_factory=dict)
    viewer_all: str = ""
    auditor: str = ""
    admin: str = ""

    def for_roles(self, roles: list[str], clinic_id: str = CLINICS[0]) -> str | None:
        """A token that may call an operation open to `roles` (the first that fits)."""
        for role in roles:
            if role == "writer":
                return self.writer[clinic_id]
            if role == "viewer":
                return self.viewer_all
            if role in ("auditor", "admin"):
                return getattr(self, role)
        return None


def bootstrap(database_url: str, clinics: tuple[str, ...] = CLINICS) -> Tokens:
    """Create the store's tables, register the clinics and issue a token per role."""
    store = parse_database_url(database_url)
    initialise(database_url)
    database = Database(store)
    try:
        directory = Directory(database)
        tokens = Tokens()
        for clinic_id in clinics:
            directory.add_clinic(clinic_id, clinic_id.replace("-", " ").title())
            tokens.writer[clinic_id] = directory.issue_token("writer", clinic_id, "rel")[1]
            tokens.viewer[clinic_id] = directory.issue_token("viewer", clinic_id, "rel")[1]
        tokens.viewer_all = directory.issue_token("viewer", None, "rel")[1]
        tokens.auditor = directory.issue_token("auditor", None, "rel")[1]
        tokens.admin = directory.issue_token("admin", None, "rel")[1]
    finally:
        database.close()
    return tokens


class LiveServer:
    """`traction serve --bind 127.0.0.1:<free port> --workers N [args]` as a real process."""

    def __init__(self, database_url: str, workers: int = 2,
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="traction-serve-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [TRACTION, "serve", "--bind", f"{HOST}:{self.port}", "--workers", str(workers),
             "--no-demo", *args],
            env={**os.environ, "TRACTION_DATABASE_URL": database_url,
                 "TRACTION_LOG_LEVEL": "warning", "TRACTION_METRICS_TOKEN": SCRAPE_TOKEN,
                 **(env or {})},
            stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True,
        )
        self.wait_until_serving()

    def wait_until_serving(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if request(self.port, "GET", "/healthz", timeout=2).status == 200:
                    return
            except CONNECTION_ERRORS:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.log_tail())

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_bytes()[-size:].decode(errors="replace")

    def errors_logged(self) -> Counter:
        """The server's logged errors, by their last line (an exception's message)."""
        found: Counter = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") in ("error", "critical"):
                text = record.get("exception") or record.get("message", "")
                if "was sent SIGKILL" in text:
                    continue  # gunicorn's note of a worker we killed
                found[text.strip().splitlines()[-1][:200] if text.strip() else "?"] += 1
        return found

    # ---- the process tree ------------------------------------------------

    def master_pid(self) -> int | None:
        """gunicorn's master: the child of `traction serve` running gunicorn."""
        for pid in children(self.process.pid):
            if b"gunicorn" in cmdline(pid):
                return pid
        return None

    def worker_pids(self) -> list[int]:
        """The live gunicorn workers (the master's children)."""
        master = self.master_pid()
        return children(master) if master else []

    def projection_runner_pid(self) -> int | None:
        """`traction projections run`, which `traction serve` starts beside gunicorn."""
        for pid in children(self.process.pid):
            if b"projections" in cmdline(pid):
                return pid
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def remove_log(self) -> None:
        self.log_path.unlink(missing_ok=True)


@contextmanager
def live_service(database_url: str, workers: int = 2) -> Iterator[tuple[LiveServer, Tokens]]:
    """A bootstrapped store and a server on it, stopped after. Its log is
    removed, unless the block failed: then its path is in the error's notes."""
    tokens = bootstrap(database_url)
    server = LiveServer(database_url, workers)
    try:
        yield server, tokens
    except BaseException as error:
        error.add_note(f"the server's log: {server.log_path}")
        server.stop()
        raise
    else:
        server.stop()
        server.remove_log()


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# ---- HTTP ------------------------------------------------------------------


def request(port: int, method: str, path: str, body: Any = None, token: str | None = None,
            timeout: float = 30, headers: dict[str, str] | None = None) -> Answer:
    """One request on a new connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return _exchange(connection, method, path, body, token, headers)
    finally:
        connection.close()


def _exchange(connection: http.client.HTTPConnection, method: str, path: str, body: Any,
              token: str | None, headers: dict[str, str] | None) -> Answer:
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    if token:
        sent["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    raw = response.read()
    answer_headers = {k.lower(): v for k, v in response.getheaders()}
    parsed: Any = None
    if raw and "json" in answer_headers.get("content-type", ""):
        parsed = json.loads(raw)
    return Answer(response.status, parsed, answer_headers, raw)


class Client:
    """A keep-alive HTTP client for one thread; reconnects when the connection dies."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 30) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        #: Connection errors seen (a killed worker, a reset), each followed by a retry.
        self.connection_errors = 0

    def once(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Answer:
        """One attempt; a connection error propagates (and the connection is dropped)."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            return _exchange(self._connection, method, path, body, self.token, headers)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, path: str, body: Any = None, *, deadline: float,
             headers: dict[str, str] | None = None) -> Answer:
        """Send until an answer comes back, retrying the same request after a
        connection error (a retry of a post is safe: same event ids). Also
        retries 503 (the store briefly unavailable). Gives up at `deadline`."""
        while True:
            try:
                answer = self.once(method, path, body, headers)
            except CONNECTION_ERRORS:
                self.connection_errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if answer.status == 503 and time.monotonic() < deadline:
                time.sleep(float(answer.headers.get("retry-after", "1")) / 4)
                continue
            return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def raw_exchange(port: int, head: bytes, body: bytes = b"", *, trickle: float = 0.0,
                 stall_after: int | None = None, timeout: float = 30) -> Answer:
    """Send bytes exactly as given (a request line and headers, then a body), and
    read the answer. `trickle` sleeps between the body's bytes; `stall_after`
    sends that many body bytes and then nothing more (the server must give up).
    Errors while sending are ignored: a server may answer and close early."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        try:
            sock.sendall(head)
            if stall_after is not None:
                sock.sendall(body[:stall_after])
            elif trickle:
                for i in range(len(body)):
                    sock.sendall(body[i:i + 1])
                    time.sleep(trickle)
            else:
                sock.sendall(body)
        except OSError:
            pass  # e.g. a 413 answered before the whole body was sent
        response = http.client.HTTPResponse(sock, method=head.split(b" ", 1)[0].decode())
        response.begin()
        raw = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        parsed = json.loads(raw) if raw and "json" in headers.get("content-type", "") else None
        return Answer(response.status, parsed, headers, raw)
    finally:
        sock.close()


def request_head(method: str, path: str, token: str | None, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
