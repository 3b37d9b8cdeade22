"""`traction serve` for the operations tests, with its stderr read as it comes.

Reading stderr all along matters: every request writes a log line, and a
pipe nobody reads fills up and stalls the server.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.server import Server


class LoggedServer(Server):
    drain_stderr = False  # read below, line by line

    def __init__(self, database_url: str, workers: int = 2, *extra: str) -> None:
        super().__init__(database_url, workers, *extra)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def stop(self) -> None:
        super().stop()
        reader = getattr(self, "_reader", None)  # None if the server never started
        if reader is not None:
            reader.join(timeout=5)

    def gunicorn_master(self) -> int:
        """The gunicorn master's pid (a child of `traction serve`)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        [master] = [int(child) for child in children
                    if b"gunicorn" in Path(f"/proc/{child}/cmdline").read_bytes()]
        return master

    def worker_pids(self) -> list[int]:
        master = self.gunicorn_master()
        return [int(pid) for pid in
                Path(f"/proc/{master}/task/{master}/children").read_text().split()]

    def log(self) -> list[dict[str, Any]]:
        """The JSON lines written so far (the CLI's own first line is text)."""
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def access_lines(self, route: str | None = None) -> list[dict[str, Any]]:
        return [line for line in self.log() if line["logger"] == "traction.access"
                and (route is None or line["route"] == route)]

    def wait_for_access_lines(self, count: int, route: str, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.access_lines(route)) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, timeout: float = 10
             ) -> tuple[int, str, dict[str, str]]:
        """One request on a fresh connection: status, body text, headers."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)
