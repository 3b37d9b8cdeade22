"""`traction projections run` as its own process, as operators run it (on any host)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class RunnerProcess:
    """`python -m service.cli projections run ...` (what `traction serve` starts),
    its stderr in a file."""

    count = 0

    def __init__(self, url: str, *args: str, delay: float | None = None,
                 logs: Path = Path("/tmp")) -> None:
        env = {**os.environ, "TRACTION_DATABASE_URL": url, "TRACTION_LOG_FORMAT": "text",
               "TRACTION_LOG_LEVEL": "warning"}
        # With a delay, each write transaction stays open that long before its
        # commit (tests/projections/slow_runner.py): a window to kill it mid-batch.
        command = (["-m", "tests.projections.slow_runner", str(delay)] if delay
                   else ["-m", "service.cli", "projections", "run"])
        RunnerProcess.count += 1
        self.log_path = logs / f"runner-{os.getpid()}-{RunnerProcess.count}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, *command, *args], cwd=ROOT, env=env,
                stdout=subprocess.DEVNULL, stderr=log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, signum: int = signal.SIGKILL) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def poll(self) -> int | None:
        return self.process.poll()

    def stderr(self) -> str:
        return self.log_path.read_text()


def wait_until(condition, timeout: float = 30.0, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")
