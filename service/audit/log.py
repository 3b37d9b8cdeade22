"""Reading the global log: every position in order, as stored and as decoded.

`read_log` is the streaming walk that verification and export share: it reads
the ledger and the events table a window of positions at a time (one
snapshot per window, never the whole log), and yields one `LogEntry` per
position, gaps included, so that nothing missing can slip past unseen.
`global_log` is the page that `GET /v1/audit/events` serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.persistence import Mapper

from domain import personal
from domain.application import Programmes, erasure_event_id
from domain.versions import EventFromNewerRelease, recorded_version, upcast_state
from service.storage import chain
from service.storage.stored import event_type

#: Positions read per query: large enough to amortise the round trip, small
#: enough that memory stays flat however long the log is.
WINDOW = 2000
ZERO = timedelta(0)


class AuditRecorder(Protocol):
    """The read-only queries the audit needs from the store's recorder
    (service/storage/sqlite.py and postgres.py)."""

    def chain_extent(self) -> int: ...

    def ledger_window(self, first: int, last: int) -> list[dict[str, Any]]: ...

    def chain_window(
        self, first: int, last: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...

    def ledger_position_of(self, programme_id: UUID, version: int) -> int | None: ...


def audit_recorder(programmes: Programmes) -> AuditRecorder:
    """The store's recorder, seen through the queries the audit uses."""
    return programmes.recorder  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One position of the log as stored: its ledger entry and its event, either
    of which may be absent in a damaged store."""

    position: int
    ledger: dict[str, Any] | None
    event: dict[str, Any] | None

    @property
    def complete(self) -> bool:
        return self.ledger is not None and self.event is not None

    @property
    def chain_hash(self) -> str | None:
        return self.ledger["chain_hash"] if self.ledger is not None else None


def read_log(
    recorder: AuditRecorder,
    first: int,
    last: int,
    *,
    window: int = WINDOW,
    progress: Callable[[int], object] | None = None,
) -> Iterator[LogEntry]:
    """Every position from first to last, in order, gaps included."""
    start = first
    while start <= last:
        stop = min(start + window - 1, last)
        ledger, events = recorder.chain_window(start, stop)
        by_position = {row["position"]: row for row in ledger}
        events_by_position = {row["position"]: row for row in events}
        for position in range(start, stop + 1):
            yield LogEntry(position, by_position.get(position),
                           events_by_position.get(position))
        if progress is not None:
            progress(stop - start + 1)
        start = stop + 1


def recorded_at_forms(recorded_at: datetime) -> list[datetime]:
    """The record time as the chain may have hashed it: in UTC (what the
    recorders write), and, if different, as the store returned it."""
    if recorded_at.utcoffset() == ZERO:
        return [recorded_at]  # the usual case: the same text either way
    return [recorded_at.astimezone(UTC), recorded_at]


def entry_hash(previous: str, position: int, ledger: dict[str, Any], event: dict[str, Any],
               recorded_at: datetime) -> str:
    """The chain hash of a stored entry, as service/storage/chain.py defines it."""
    return chain.entry_hash(
        previous,
        position=position,
        programme_id=event["originator_id"],
        version=event["originator_version"],
        topic=event["topic"],
        state=event["state"],
        event_id=ledger["event_id"],
        clinic_id=ledger["clinic_id"],
        recorded_at=recorded_at,
    )


def hashed_recorded_at(previous: str, position: int, entry: LogEntry,
                       expected: str | None) -> datetime | None:
    """The form of the record time under which the entry, placed at `position`
    after `previous`, hashes to `expected`; None if none does."""
    if not entry.complete or expected is None:
        return None
    assert entry.ledger is not None and entry.event is not None
    for form in recorded_at_forms(entry.ledger["recorded_at"]):
        if entry_hash(previous, position, entry.ledger, entry.event, form) == expected:
            return form
    return None


def decode(mapper: Mapper[UUID], event: dict[str, Any],
           versions: Mapping[str, int] | None = None) -> dict[str, Any] | None:
    """An event's readable fields from its stored bytes; None if they cannot be
    decoded (damaged bytes, or encrypted under a key this process lacks).

    Older versions are upcast to this release's (or, given `versions`, to
    what an older release showed: an export's header says so); an event of a
    newer release is shown as stored, marked `newer_release`."""
    try:
        state = event["state"]
        if mapper.cipher:
            state = mapper.cipher.decrypt(state)
        if mapper.compressor:
            state = mapper.compressor.decompress(state)
        decoded: dict[str, Any] = mapper.transcoder.decode(state)
        type_name = event_type(event["topic"])
        recorded = recorded_version(decoded)
        try:
            upcast_state(event["topic"], decoded,
                         None if versions is None else versions.get(type_name, 1))
            newer = False
        except EventFromNewerRelease:
            newer = True
        return {
            "event_id": str(decoded["event_id"]),
            "type": type_name,
            "occurred_at": decoded["occurred_at"].isoformat(),
            "recorded_by": decoded["recorded_by"],
            "data": decoded["data"],
            "schema_version": recorded,
            "newer_release": newer,
        }
    except Exception:  # any damage at all means: cannot be read
        return None


def log_item(entry: LogEntry, mapper: Mapper[UUID]) -> dict[str, Any]:
    """One event of the global log as the API shows it: the programme history's
    fields plus clinic_id, programme_id and the entry's chain hash. Fields are
    null only where the store is damaged (verification says where)."""
    ledger, event = entry.ledger, entry.event
    readable = decode(mapper, event) if event is not None else None
    return {
        "position": entry.position,
        "event_id": (readable or {}).get("event_id")
        or (str(ledger["event_id"]) if ledger else None),
        "type": (readable or {}).get("type")
        or (ledger["event_type"] if ledger else event_type(event["topic"]) if event else None),
        "version": event["originator_version"] if event else ledger["version"] if ledger else None,
        "programme_id": str(event["originator_id"] if event else ledger["programme_id"])
        if (event or ledger) else None,
        "clinic_id": ledger["clinic_id"] if ledger else None,
        "occurred_at": readable["occurred_at"] if readable else None,
        "recorded_at": ledger["recorded_at"].astimezone(UTC).isoformat() if ledger else None,
        "recorded_by": readable["recorded_by"] if readable else None,
        "data": readable["data"] if readable else None,
        "schema_version": readable["schema_version"] if readable else None,
        "newer_release": readable["newer_release"] if readable else None,
        "chain_hash": ledger["chain_hash"] if ledger else None,
    }


class LogSource(Protocol):
    """Where a page of the global log is read: the store's recorder, or a replica
    of it (service/storage/replica.py)."""

    def select_notifications(self, start: int, limit: int) -> Sequence[Any]: ...

    def ledger_window(self, first: int, last: int) -> list[dict[str, Any]]: ...


def global_log(programmes: Programmes, after: int, limit: int,
               source: LogSource | None = None) -> list[dict[str, Any]]:
    """The events after position `after`, at most `limit`, in position order.

    Read as the library's notification log (the events table), joined with the
    ledger entries of the same positions, from `source` (default: the store).
    """
    if source is None:
        source = cast(LogSource, programmes.recorder)
    notifications = source.select_notifications(after + 1, limit)
    if not notifications:
        return []
    ledger = {
        row["position"]: row
        for row in source.ledger_window(notifications[0].id, notifications[-1].id)
    }
    items = [
        log_item(
            LogEntry(
                n.id,
                ledger.get(n.id),
                {"position": n.id, "originator_id": n.originator_id,
                 "originator_version": n.originator_version, "topic": n.topic,
                 "state": n.state},
            ),
            programmes.mapper,
        )
        for n in notifications
    ]
    return with_personal_fields(programmes, items)


def with_personal_fields(programmes: Programmes, items: list[dict[str, Any]]
                         ) -> list[dict[str, Any]]:
    """The items with their personal fields opened as a programme's history shows
    them: `[erased]` for every event of an erased programme (its erasure found in
    the ledger, one query a page), UNREADABLE where a sealed value was altered."""
    seal = programmes.seal
    if seal is None:
        return items
    programme_ids = {UUID(item["programme_id"]) for item in items if item["data"] is not None}
    erasures = {erasure_event_id(programme_id): programme_id for programme_id in programme_ids}
    erased = {erasures[entry.event_id]
              for entry in programmes.ledger.entries_by_event_id(None, list(erasures))
              if entry.programme_id == erasures[entry.event_id]}
    for item in items:
        if item["data"] is None or item["newer_release"]:
            continue
        programme_id = UUID(item["programme_id"])
        item["data"] = (personal.erased(item["type"], item["data"]) if programme_id in erased
                        else personal.opened(seal, programme_id, UUID(item["event_id"]),
                                             item["type"], item["data"]))
    return items
