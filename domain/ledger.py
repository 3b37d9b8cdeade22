"""The ledger: what the store records beside every event, and what the application asks of it.

Beside each stored event the store keeps a ledger entry, written in the
same transaction: the client's `event_id` (rule 6: a retry is recognised by
it), the clinic, the record time (for `as_of`), a digest of the posted
content, the programme's version after the save, and the event's gap-free
global position. `Ledger` is the port: the queries `Programmes` makes. The
store's recorders implement it (service/storage: SQLite and PostgreSQL, with
the integrity chain); `InMemoryLedger` implements it in memory, so the
domain runs with no database at all, as the library's POPO recorders do for
its own example applications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Mapper, ProgrammingError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from domain.versions import EventFromNewerRelease, recorded_version


@dataclass(frozen=True)
class LedgerEntry:
    """What the store records beside each new event, in the same transaction."""

    event_id: UUID
    clinic_id: str
    event_type: str
    content_digest: str | None  # None for events the aggregate recorded by itself


@dataclass(frozen=True)
class RecordedEntry:
    """A ledger entry as read back from the store."""

    position: int
    programme_id: UUID
    version: int
    event_id: UUID
    clinic_id: str
    event_type: str
    recorded_at: datetime
    content_digest: str | None
    saved_version: int  # the programme's version after the save that recorded it


class HistoryEntry(NamedTuple):
    """One stored event of a programme, decoded, with its ledger entry.
    (A tuple: a history holds hundreds of them per request.)"""

    version: int
    position: int | None  # None only if the ledger row is missing (the audit reports it)
    recorded_at: str | None  # RFC 3339, UTC
    clinic_id: str | None  # from the ledger
    event_id: str
    type: str
    occurred_at: str  # as posted, isoformat()
    recorded_by: str
    data: dict[str, Any]  # in this release's shape (upcast), unless from a newer release
    schema_version: int = 1  # the version of its type it was recorded under
    newer_release: bool = False  # recorded by a newer release: shown as stored


class HistorySource(Protocol):
    """Where a programme's history can be read: the ledger, or a copy of it."""

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]: ...


class Ledger(Protocol):
    """The queries the application makes of the ledger."""

    def entries_by_event_id(self, event_ids: Sequence[UUID]) -> list[RecordedEntry]: ...

    def entries_of_programme(self, programme_id: UUID) -> list[RecordedEntry]: ...

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None: ...

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]:
        """Every stored event of the programme in version order, decoded (with the
        application's mapper: its cipher, compressor and event classes)."""
        ...


def ledger_entries_for(stored_events: Sequence[StoredEvent],
                       entries: Sequence[LedgerEntry] | None) -> Sequence[LedgerEntry]:
    """The ledger entries passed with a save, one per stored event."""
    if entries is None or len(entries) != len(stored_events):
        # A bug in the caller, not a conflict: never retried as one.
        raise ProgrammingError("every stored event needs a ledger entry (pass ledger=...)")
    return entries


class InMemoryLedger(POPOApplicationRecorder):
    """The library's in-memory recorder, with the ledger beside it.

    Positions are the in-memory notification ids (1, 2, 3, ... in save
    order), record times never go backwards, and an `event_id` is recorded
    once: a save that repeats one fails with IntegrityError, as it does in
    the stores' unique index, and records nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[int, RecordedEntry] = {}
        self._position_by_event_id: dict[UUID, int] = {}
        self._recorded_at = datetime.min.replace(tzinfo=UTC)

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                       ) -> Sequence[int] | None:
        with self._database_lock:
            entries = ledger_entries_for(stored_events, kwargs.get("ledger"))
            event_ids = [entry.event_id for entry in entries]
            if len(set(event_ids)) < len(event_ids) or any(
                    event_id in self._position_by_event_id for event_id in event_ids):
                raise IntegrityError("an event_id is already recorded")
            positions = super()._insert_events(stored_events, **kwargs)
            assert positions is not None
            self._recorded_at = max(datetime.now(UTC), self._recorded_at)
            saved: dict[Any, int] = {}
            for stored in stored_events:
                saved[stored.originator_id] = max(saved.get(stored.originator_id, 0),
                                                  stored.originator_version)
            for position, stored, entry in zip(positions, stored_events, entries, strict=True):
                self._entries[position] = RecordedEntry(
                    position=position,
                    programme_id=UUID(str(stored.originator_id)),
                    version=stored.originator_version,
                    event_id=entry.event_id,
                    clinic_id=entry.clinic_id,
                    event_type=entry.event_type,
                    recorded_at=self._recorded_at,
                    content_digest=entry.content_digest,
                    saved_version=saved[stored.originator_id],
                )
                self._position_by_event_id[entry.event_id] = position
            return positions

    # ---- the Ledger port ----------------------------------------------------

    def entries_by_event_id(self, event_ids: Sequence[UUID]) -> list[RecordedEntry]:
        with self._database_lock:
            positions = sorted(self._position_by_event_id[e] for e in set(event_ids)
                               if e in self._position_by_event_id)
            return [self._entries[p] for p in positions]

    def entries_of_programme(self, programme_id: UUID) -> list[RecordedEntry]:
        with self._database_lock:
            return [e for _, e in sorted(self._entries.items())
                    if e.programme_id == programme_id]

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None:
        versions = [e.version for e in self.entries_of_programme(programme_id)
                    if e.recorded_at <= as_of]
        return max(versions) if versions else None

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]:
        entries = {e.version: e for e in self.entries_of_programme(programme_id)}
        history = []
        for stored in self.select_events(programme_id):
            entry = entries.get(stored.originator_version)
            state = mapper.transcoder.decode(stored.state)
            recorded = recorded_version(state)
            try:
                event: Any = mapper.to_domain_event(stored)
                event_id, type_name, occurred_at, recorded_by, data, newer = (
                    event.event_id, type(event).__name__, event.occurred_at,
                    event.recorded_by, event.data, False)
            except EventFromNewerRelease as newer_event:
                event_id, type_name, occurred_at, recorded_by, data, newer = (
                    state["event_id"], newer_event.event_type, state["occurred_at"],
                    state["recorded_by"], state["data"], True)
            history.append(HistoryEntry(
                version=stored.originator_version,
                position=entry.position if entry else None,
                recorded_at=entry.recorded_at.isoformat() if entry else None,
                clinic_id=entry.clinic_id if entry else None,
                event_id=str(event_id),
                type=type_name,
                occurred_at=occurred_at.isoformat(),
                recorded_by=recorded_by,
                data=data,
                schema_version=recorded,
                newer_release=newer,
            ))
        return history

    def log_rows(self, after: int, limit: int) -> list[tuple[int, int, int, str, bytes]]:
        """(position, programme id as an int, version, topic, state) after `after`, as the
        stores' recorders give them to the projections."""
        return [(n.id, UUID(str(n.originator_id)).int, n.originator_version, n.topic, n.state)
                for n in self.select_notifications(after + 1, limit)]
