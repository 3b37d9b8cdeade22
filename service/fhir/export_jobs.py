"""The rows of FHIR Bulk Data export jobs (table fhir_export_jobs, migration 0004).

A job is `accepted`, `running`, then `completed`, `failed` or `cancelled`.
Whoever runs a job renews its `heartbeat_at`; a job whose heartbeat is older
than its staleness was left by a process that stopped (a worker restart), and
any worker may take it over (`take_over`: a compare-and-set on the heartbeat,
so only one does) and run it again from the start.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.storage.database import Database

ACTIVE = ("accepted", "running")


class ClinicBusy(Exception):
    """The clinic already has an export accepted or running."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@dataclass(frozen=True)
class ExportJob:
    job_id: str
    clinic_id: str
    status: str
    request_url: str
    types: tuple[str, ...]
    since: datetime | None
    transaction_time: datetime
    heartbeat_at: str
    programmes_done: int
    programmes_total: int
    output: list[dict[str, Any]]
    error: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ExportJob:
        return cls(
            job_id=row["job_id"], clinic_id=row["clinic_id"], status=row["status"],
            request_url=row["request_url"], types=tuple(row["types"].split(",")),
            since=datetime.fromisoformat(row["since"]) if row["since"] else None,
            transaction_time=datetime.fromisoformat(row["transaction_time"]),
            heartbeat_at=row["heartbeat_at"], programmes_done=row["programmes_done"],
            programmes_total=row["programmes_total"],
            output=json.loads(row["output"]) if row["output"] else [],
            error=row["error"],
        )

    def heartbeat_age(self, now: datetime) -> float:
        return (now - datetime.fromisoformat(self.heartbeat_at)).total_seconds()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class ExportJobs:
    """The job rows of every clinic."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def create(self, clinic_id: str, request_url: str, types: tuple[str, ...],
               since: datetime | None) -> ExportJob:
        """A new accepted job; ClinicBusy if the clinic has one accepted or running."""
        job_id = uuid.uuid4().hex
        now = now_iso()
        with self.db.transaction() as cursor:
            busy = cursor.execute(
                "SELECT job_id FROM fhir_export_jobs WHERE clinic_id = %s AND status IN "
                "('accepted', 'running')", [clinic_id]).fetchone()
            if busy is not None:
                raise ClinicBusy(busy["job_id"])
            cursor.execute(
                "INSERT INTO fhir_export_jobs (job_id, clinic_id, status, request_url, types,"
                " since, transaction_time, created_at, heartbeat_at) VALUES"
                " (%s, %s, 'accepted', %s, %s, %s, %s, %s, %s)",
                [job_id, clinic_id, request_url, ",".join(types),
                 since.isoformat() if since else None, now, now, now])
        found = self.get(clinic_id, job_id)
        assert found is not None
        return found

    def get(self, clinic_id: str, job_id: str) -> ExportJob | None:
        """The clinic's job (another clinic's is None, as a missing one)."""
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute("SELECT * FROM fhir_export_jobs WHERE job_id = %s AND "
                                 "clinic_id = %s", [job_id, clinic_id]).fetchone()
        return ExportJob.of(row) if row else None

    def _update(self, sql: str, params: list[Any]) -> bool:
        with self.db.transaction() as cursor:
            return cursor.execute(sql, params).raw.rowcount == 1

    def take_over(self, job: ExportJob) -> bool:
        """Claim the job to run it: an accepted one, or a stale one another process
        left; True for exactly one claimant."""
        return self._update(
            "UPDATE fhir_export_jobs SET status = 'running', heartbeat_at = %s,"
            " programmes_done = 0 WHERE job_id = %s AND status IN ('accepted', 'running')"
            " AND heartbeat_at = %s", [now_iso(), job.job_id, job.heartbeat_at])

    def beat(self, job_id: str, done: int, total: int) -> bool:
        """Renew the heartbeat and say the progress; False once the job was cancelled."""
        return self._update(
            "UPDATE fhir_export_jobs SET heartbeat_at = %s, programmes_done = %s,"
            " programmes_total = %s WHERE job_id = %s AND status = 'running'",
            [now_iso(), done, total, job_id])

    def complete(self, job_id: str, output: list[dict[str, Any]]) -> bool:
        return self._update(
            "UPDATE fhir_export_jobs SET status = 'completed', output = %s, heartbeat_at = %s"
            " WHERE job_id = %s AND status = 'running'",
            [json.dumps(output), now_iso(), job_id])

    def fail(self, job_id: str, error: str) -> bool:
        return self._update(
            "UPDATE fhir_export_jobs SET status = 'failed', error = %s, heartbeat_at = %s"
            " WHERE job_id = %s AND status IN ('accepted', 'running')",
            [error, now_iso(), job_id])

    def cancel(self, clinic_id: str, job_id: str) -> bool:
        return self._update(
            "UPDATE fhir_export_jobs SET status = 'cancelled', heartbeat_at = %s"
            " WHERE job_id = %s AND clinic_id = %s AND status <> 'cancelled'",
            [now_iso(), job_id, clinic_id])
