"""Run `traction serve` as a real process on a free port, for end-to-end tests."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.stores import SCRAPE_TOKEN

TRACTION = str(Path(sys.executable).with_name("traction"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def traction(database_url: str, *args: str) -> str:
    """Run a `traction` command; return its standard output."""
    env = {**os.environ, "TRACTION_DATABASE_URL": database_url}
    done = subprocess.run([TRACTION, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


class Server:
    #: Read the server's stderr in a thread (keeping its last lines).
    drain_stderr = True

    def _drain(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self.stderr_tail.append(line)

    def __init__(self, database_url: str, workers: int = 2, *extra: str) -> None:
        self.port = free_port()
        self.stderr_tail: collections.deque[bytes] = collections.deque(maxlen=200)
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TRACTION_DATABASE_URL": database_url,
               "TRACTION_METRICS_TOKEN": SCRAPE_TOKEN}
        self.process = subprocess.Popen(
            [TRACTION, "serve", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
             "--no-demo", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if self.drain_stderr:
            # The server logs a line per request: a pipe nobody reads would
            # fill and block the workers. Subclasses that read it say so.
            threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start: "
                           + b"".join(self.stderr_tail).decode(errors="replace"))

    def request(self, method: str, path: str, body: Any = None,
                token: str | None = None) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null"), dict(
                    response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), dict(error.headers)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self.drain_stderr and self.process.stderr:
            self.process.stderr.close()
