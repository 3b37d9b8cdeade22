"""What both stores' recorders share: building ledger rows for new events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry, RecordedEntry, ledger_entries_for
from service.storage import chain

#: Columns of the ledger table, in insert order.
LEDGER_COLUMNS = (
    "position", "programme_id", "version", "event_id", "clinic_id", "event_type",
    "recorded_at", "content_digest", "saved_version", "chain_hash",
)


def ledger_rows(
    stored_events: Sequence[StoredEvent],
    entries: Sequence[LedgerEntry] | None,
    first_position: int,
    previous_hash: str,
    previous_recorded_at: datetime | None,
) -> list[dict[str, Any]]:
    """Ledger rows for events about to be inserted at first_position onwards.

    Called under the store's write lock, so positions and the chain are
    assigned in commit order.
    """
    entries = ledger_entries_for(stored_events, entries)
    now = datetime.now(UTC)
    # Record times never go backwards along the log, so `as_of` is a prefix.
    # Always UTC: the value read back from PostgreSQL carries the session's
    # time zone, and its text form goes into the chain hash.
    recorded_at = max(now, previous_recorded_at).astimezone(UTC) if previous_recorded_at else now
    saved_versions: dict[Any, int] = {}
    for stored in stored_events:
        saved_versions[stored.originator_id] = max(
            saved_versions.get(stored.originator_id, 0), stored.originator_version
        )
    rows = []
    previous = previous_hash
    for offset, (stored, entry) in enumerate(zip(stored_events, entries, strict=True)):
        position = first_position + offset
        chain_hash = chain.entry_hash(
            previous,
            position=position,
            programme_id=stored.originator_id,  # type: ignore[arg-type]
            version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
            event_id=entry.event_id,
            clinic_id=entry.clinic_id,
            recorded_at=recorded_at,
        )
        rows.append(
            {
                "position": position,
                "programme_id": stored.originator_id,
                "version": stored.originator_version,
                "event_id": entry.event_id,
                "clinic_id": entry.clinic_id,
                "event_type": entry.event_type,
                "recorded_at": recorded_at,
                "content_digest": entry.content_digest,
                "saved_version": saved_versions[stored.originator_id],
                "chain_hash": chain_hash,
            }
        )
        previous = chain_hash
    return rows


def recorded_entry(row: Any, *, to_uuid: Any, to_datetime: Any) -> RecordedEntry:
    return RecordedEntry(
        position=row["position"],
        programme_id=to_uuid(row["programme_id"]),
        version=row["version"],
        event_id=to_uuid(row["event_id"]),
        clinic_id=row["clinic_id"],
        event_type=row["event_type"],
        recorded_at=to_datetime(row["recorded_at"]),
        content_digest=row["content_digest"],
        saved_version=row["saved_version"],
    )
