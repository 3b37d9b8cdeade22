"""Verification as a job: started by the API, run off the request thread,
its progress and result polled.

A whole verification reads every event (about 30 s per million on a small
machine): far beyond a worker's request timeout at millions of events. So
`POST /v1/audit/verifications` records a job and runs it in a thread of the
worker that took the request; `GET /v1/audit/verifications/{id}` reads the
job's row, which the job keeps up to date.

While it runs, a heartbeat writes its progress every HEARTBEAT seconds. A job
whose heartbeat is older than ABANDONED_AFTER stopped with its worker (a
restart, a crash, a deploy): it is reported, and recorded, as `abandoned`,
saying so, and a new one can be started. One job runs at a time across the
service: starting one while another is alive answers that one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.audit.verify import Report
from service.storage.database import Database

logger = logging.getLogger(__name__)

HEARTBEAT = 2.0
ABANDONED_AFTER = 30.0
TABLE = "audit_verifications"
ALIVE = ("queued", "running")


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class JobProgress:
    """What the chain walk reports as it goes (it expects a progress bar)."""

    def __init__(self) -> None:
        self.total: Any = None
        self.n = 0

    def update(self, n: float = 1) -> None:
        self.n += int(n)

    def refresh(self) -> None:
        pass  # the heartbeat writes it


class Verifications:
    """The audit_verifications table (one of the service's own tables)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def start(self, requested_by: str | None, checkpoints: bool) -> tuple[dict[str, Any], bool]:
        """A new queued job, or the one still alive: (job, whether it is new)."""
        with self.db.transaction() as cursor:
            if cursor.postgres:
                cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            alive = cursor.execute(
                f"SELECT * FROM {TABLE} WHERE state IN ('queued', 'running') "
                "ORDER BY requested_at DESC LIMIT 1").fetchone()
            if alive is not None and not _stale(alive):
                return _shown(alive), False
            now = _iso(_now())
            if alive is not None:  # its worker stopped: say so before starting anew
                cursor.execute(
                    f"UPDATE {TABLE} SET state = 'abandoned', finished_at = %s, error = %s "
                    "WHERE verification_id = %s",
                    [now, _abandoned(alive), alive["verification_id"]])
            job_id = str(uuid.uuid4())
            cursor.execute(
                f"INSERT INTO {TABLE} (verification_id, state, requested_at, requested_by, "
                "checkpoints, heartbeat_at) VALUES (%s, 'queued', %s, %s, %s, %s)",
                [job_id, now, requested_by, int(checkpoints), now])
            row = cursor.execute(f"SELECT * FROM {TABLE} WHERE verification_id = %s",
                                 [job_id]).fetchone()
        assert row is not None
        return _shown(row), True

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as an auditor sees it; an abandoned one is recorded as such."""
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute(f"SELECT * FROM {TABLE} WHERE verification_id = %s",
                                 [job_id]).fetchone()
        if row is None:
            return None
        if row["state"] in ALIVE and _stale(row):
            self._finish(job_id, "abandoned", error=_abandoned(row))
            return self.get(job_id)
        return _shown(row)

    def running(self, job_id: str) -> None:
        self._update(job_id, "state = 'running', started_at = %s, heartbeat_at = %s",
                     [_iso(_now()), _iso(_now())], only_alive=True)

    def beat(self, job_id: str, progress: JobProgress) -> None:
        self._update(job_id, "heartbeat_at = %s, events_checked = %s, events_total = %s",
                     [_iso(_now()), progress.n, progress.total])

    def succeeded(self, job_id: str, report: Report, progress: JobProgress) -> None:
        self._finish(job_id, "succeeded", report=report.as_dict(), progress=progress)

    def failed(self, job_id: str, error: str, progress: JobProgress) -> None:
        self._finish(job_id, "failed", error=error, progress=progress)

    def _finish(self, job_id: str, state: str, *, report: dict[str, Any] | None = None,
                error: str | None = None, progress: JobProgress | None = None) -> None:
        checked = "events_checked = %s, events_total = %s, " if progress is not None else ""
        values: list[Any] = [progress.n, progress.total] if progress is not None else []
        self._update(job_id, f"{checked}state = %s, finished_at = %s, report = %s, error = %s",
                     [*values, state, _iso(_now()),
                      json.dumps(report) if report is not None else None, error],
                     only_alive=True)

    def _update(self, job_id: str, assignments: str, values: list[Any], *,
                only_alive: bool = False) -> None:
        alive = " AND state IN ('queued', 'running')" if only_alive else ""
        with self.db.transaction() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET {assignments} WHERE verification_id = %s"
                           + alive, [*values, job_id])


def _abandoned(row: dict[str, Any]) -> str:
    return ("the worker running this verification stopped (a restart or a crash) before it "
            f"finished, at {int(row['events_checked'] or 0)} events; start a new one")


def _stale(row: dict[str, Any]) -> bool:
    beat = datetime.fromisoformat(row["heartbeat_at"] or row["requested_at"])
    return _now() - beat > timedelta(seconds=ABANDONED_AFTER)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "verification_id": row["verification_id"],
        "state": row["state"],
        "checkpoints": bool(row["checkpoints"]),
        "requested_at": row["requested_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "events_checked": int(row["events_checked"] or 0),
        "events_total": int(row["events_total"]) if row["events_total"] is not None else None,
        "report": json.loads(row["report"]) if row["report"] else None,
        "error": row["error"],
    }


#: The verification threads this process runs: closing the store waits for them
#: (service/bootstrap.py), since a SQLite connection closed under a running
#: query can take the whole process down.
_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


def wait_for_running(timeout: float) -> None:
    """Wait (up to `timeout` seconds in all) for this process's verifications to end."""
    deadline = time.monotonic() + timeout
    with _running_lock:
        threads = list(_running)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def run_in_background(jobs: Verifications, job_id: str,
                      verify: Callable[[JobProgress], Report]) -> threading.Thread:
    """Run `verify` in a thread of this process, with its heartbeat beside it."""
    progress = JobProgress()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT):
            try:
                jobs.beat(job_id, progress)
            except Exception:  # the next beat tries again; the job decides the outcome
                pass
        jobs.db.release_thread()

    def work() -> None:
        beating = threading.Thread(target=heartbeat, name=f"verification-beat-{job_id[:8]}",
                                   daemon=True)
        try:
            jobs.running(job_id)
            beating.start()
            report = verify(progress)
            done.set()
            jobs.succeeded(job_id, report, progress)
        except Exception as error:  # recorded for the auditor, never lost silently
            done.set()
            try:
                jobs.failed(job_id, f"{type(error).__name__}: {error}", progress)
            except Exception:
                # The store is gone too (a shutdown): the stopped heartbeat makes the
                # job read as abandoned, which says what happened.
                logger.exception("verification %s failed and could not be recorded", job_id)
        finally:
            jobs.db.release_thread()
            with _running_lock:
                _running.discard(threading.current_thread())

    # A daemon: a worker that stops does not wait for it (the job is then abandoned).
    thread = threading.Thread(target=work, name=f"verification-{job_id[:8]}", daemon=True)
    with _running_lock:
        _running.add(thread)
    thread.start()
    return thread
