"""Replaying one programme for an auditor: its state at a version or a record
time, and the events that led to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain import errors
from domain.application import Programmes


def replay(
    programmes: Programmes,
    programme_id: UUID,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    clinic_id: str | None = None,
) -> dict[str, Any]:
    """The programme after `version` (or as known `as_of`), in any clinic, and
    the events up to that version, with the corrections in force at that point.

    `programme_id` is the stored id (as the log, the audit export and verify
    show it); with `clinic_id`, it is that clinic's own programme_id, which is
    stored under an alias if another clinic used it first
    (domain/programme_aliases.py)."""
    if clinic_id is not None:
        programme_id = programmes.stored_ids(clinic_id, [programme_id])[programme_id]
    entries = programmes.ledger.entries_of_programme(programme_id)
    if not entries:
        raise errors.ProgrammeNotFound(f"no programme {programme_id}")
    if clinic_id is not None and entries[0].clinic_id != clinic_id:
        raise errors.ProgrammeNotFound(f"no programme {programme_id} in clinic {clinic_id}")
    clinic_id = entries[0].clinic_id
    programme = programmes.programme(clinic_id, programme_id, version=version, as_of=as_of)
    events = [
        {**item, "corrected_by": None}
        for item in programmes.history(clinic_id, programme_id)
        if item["version"] <= programme.version
    ]
    # Only corrections recorded by then count: later ones had not happened yet.
    by_id = {item["event_id"]: item for item in events}
    for item in events:
        if item["type"] == "EntryCorrected" and str(item["data"]["corrects"]) in by_id:
            by_id[str(item["data"]["corrects"])]["corrected_by"] = item["event_id"]
    return {
        "programme_id": str(programme_id),
        "clinic_id": clinic_id,
        # The id the clinic uses for it (the same unless stored under an alias).
        "clinic_programme_id": str(programmes.clinic_programme_id(programme_id)),
        "version": programme.version,
        "latest_version": max(e.version for e in entries),
        "state": programme.state(),
        "events": events,
    }
