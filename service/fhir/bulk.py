"""FHIR Bulk Data export of a clinic: NDJSON files, one per resource type, written
off the request thread, a programme at a time.

`write_export` streams: it holds one programme's events and resources at a
time, whatever the clinic's size, and writes each resource as one line of its
type's file. The export shows every programme as it stood at the job's
`transactionTime` (its version then, as `as_of` does), and with `_since` only
what changed after that time: a resource of an event recorded (or corrected)
after it, and a programme's EpisodeOfCare, Condition and CarePlans when any
of its events was.

`BulkExports` runs the jobs: one thread per job, in the worker that accepted
it (or that took it over after the process running it stopped: a stale
heartbeat), renewing the job's heartbeat and progress as it goes, stopping
when the job is cancelled.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from domain import errors
from domain.application import Programmes
from service.fhir.export_jobs import ExportJob, ExportJobs
from service.fhir.mapping import ProgrammeMapping
from service.storage.database import Database

log = logging.getLogger(__name__)

#: The resource types an export may hold (`_type` picks among them).
EXPORT_TYPES = ("Organization", "EpisodeOfCare", "Condition", "CarePlan", "Procedure",
                "Observation", "AdverseEvent", "Provenance")
#: Resources whose state follows their own event (and its corrections); the
#: others follow the programme's latest event.
EVENT_RESOURCES = ("Procedure", "Observation", "AdverseEvent", "Provenance")
#: How often a running job renews its heartbeat (and looks for a cancellation).
BEAT_SECONDS = 2.0
#: A heartbeat older than this: the process running the job stopped.
STALE_SECONDS = 30.0


class Cancelled(Exception):
    """The job was cancelled (or taken over) while it ran."""


class Stopped(Exception):
    """This process is closing: the job is left to be taken over (a stale heartbeat)."""


def moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def clinic_programmes(database: Database, clinic_id: str) -> list[UUID]:
    """The clinic's programmes, in a stable order."""
    with database.transaction(write=False) as cursor:
        rows = cursor.execute("SELECT DISTINCT programme_id FROM event_ledger WHERE "
                              "clinic_id = %s ORDER BY programme_id", [clinic_id]).fetchall()
    return [UUID(str(row["programme_id"])) for row in rows]


def changed_resources(resources: Iterable[dict[str, Any]], events: list[dict[str, Any]],
                      since: datetime) -> Iterator[dict[str, Any]]:
    """The resources whose state changed after `since`."""
    recorded = {str(e["event_id"]): moment(e["recorded_at"]) for e in events}
    for event in events:
        if event["type"] == "EntryCorrected":
            target = str(event["data"]["corrects"])
            if target in recorded:
                recorded[target] = max(recorded[target], moment(event["recorded_at"]))
    latest = max(recorded.values())
    for resource in resources:
        if resource["resourceType"] in EVENT_RESOURCES:
            changed = recorded.get(resource["id"].removesuffix("-baseline"), latest)
        else:
            changed = latest
        if changed > since:
            yield resource


@dataclass
class Files:
    """The export's NDJSON files, opened as their first line comes."""

    directory: Path
    types: tuple[str, ...]

    def __post_init__(self) -> None:
        self.handles: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = {}

    def write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        if kind not in self.types:
            return
        handle = self.handles.get(kind)
        if handle is None:
            handle = self.handles[kind] = open(self.directory / f"{kind}.ndjson", "w",
                                               encoding="utf-8")
            self.counts[kind] = 0
        handle.write(json.dumps(resource, separators=(",", ":"), default=str))
        handle.write("\n")
        self.counts[kind] += 1

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def write_export(programmes: Programmes, database: Database, clinic_id: str,
                 clinic_name: str | None, directory: Path, *, types: tuple[str, ...],
                 transaction_time: datetime, since: datetime | None = None,
                 progress: Callable[[int, int], None] = lambda done, total: None
                 ) -> dict[str, int]:
    """Write the clinic's export into `directory`; the lines written per type.
    `progress(done, total)` is called after each programme (it may raise Cancelled)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = Files(directory, types)
    try:
        ids = clinic_programmes(database, clinic_id)
        organization_written = False
        for done, programme_id in enumerate(ids, start=1):
            version = programmes.ledger.version_as_of(programme_id, transaction_time)
            if version is not None:
                try:
                    events = programmes.history(clinic_id, programme_id, version)
                except errors.ProgrammeNotFound:
                    events = []
                if events:
                    # Under the clinic's own programme_id (it is stored under
                    # an alias if another clinic used that id first).
                    mapping = ProgrammeMapping(
                        clinic_id, clinic_name,
                        str(programmes.clinic_programme_id(programme_id)), events)
                    resources = mapping.resources()
                    if not organization_written:
                        files.write(resources[0])
                        organization_written = True
                    body = resources[1:]
                    if since is not None:
                        body = list(changed_resources(body, events, since))
                    for resource in body:
                        files.write(resource)
            progress(done, len(ids))
    finally:
        files.close()
    return dict(files.counts)


class BulkExports:
    """Runs a worker's export jobs, each on a thread of its own."""

    def __init__(self, programmes: Programmes, database: Database, root: Path,
                 clinic_names: Callable[[str], str | None]) -> None:
        self.programmes = programmes
        self.jobs = ExportJobs(database)
        self.database = database
        self.root = root
        self.clinic_names = clinic_names
        self.stale_seconds = STALE_SECONDS
        self.beat_seconds = BEAT_SECONDS
        self._threads: dict[str, threading.Thread] = {}
        self._closing = threading.Event()

    def directory(self, job_id: str) -> Path:
        return self.root / job_id

    def start(self, job: ExportJob) -> bool:
        """Run `job` here if it is free to take (accepted, or left stale)."""
        if not self.jobs.take_over(job):
            return False
        thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                  name=f"fhir-export-{job.job_id[:8]}")
        self._threads[job.job_id] = thread
        thread.start()
        return True

    def revive_if_stale(self, job: ExportJob, now: datetime) -> bool:
        """Take over a job whose process stopped (its heartbeat is stale)."""
        if job.status in ("accepted", "running") and job.heartbeat_age(now) > self.stale_seconds:
            log.warning("FHIR export %s was left by a stopped process; running it again",
                        job.job_id)
            return self.start(job)
        return False

    def cancel(self, clinic_id: str, job_id: str) -> bool:
        """Cancel the clinic's job and delete its files (a thread running it here or
        elsewhere stops at its next heartbeat)."""
        if not self.jobs.cancel(clinic_id, job_id):
            return False
        shutil.rmtree(self.directory(job_id), ignore_errors=True)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop this process's jobs (at their next programme) and wait for them: they
        stay running in the store, to be taken over by another process."""
        self._closing.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Wait for this worker's thread of the job to end (tests, benchmarks)."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: ExportJob) -> None:
        directory = self.directory(job.job_id)
        last_beat = [time.monotonic()]

        def progress(done: int, total: int) -> None:
            if self._closing.is_set():
                raise Stopped(job.job_id)
            now = time.monotonic()
            if done == total or now - last_beat[0] >= self.beat_seconds:
                last_beat[0] = now
                if not self.jobs.beat(job.job_id, done, total):
                    raise Cancelled(job.job_id)

        try:
            shutil.rmtree(directory, ignore_errors=True)  # a run taken over starts afresh
            counts = write_export(self.programmes, self.database, job.clinic_id,
                                  self.clinic_names(job.clinic_id), directory,
                                  types=job.types, transaction_time=job.transaction_time,
                                  since=job.since, progress=progress)
            output = [{"type": kind, "count": counts[kind]}
                      for kind in job.types if counts.get(kind)]
            if not self.jobs.complete(job.job_id, output):
                raise Cancelled(job.job_id)
        except Cancelled:
            shutil.rmtree(directory, ignore_errors=True)
        except Stopped:
            log.warning("FHIR export %s stopped with its process; another will take it "
                        "over", job.job_id)
        except Exception as error:  # the job fails, clearly; the worker goes on
            log.exception("FHIR export %s failed", job.job_id)
            self.jobs.fail(job.job_id, f"{type(error).__name__}: {error}")
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            self._threads.pop(job.job_id, None)
