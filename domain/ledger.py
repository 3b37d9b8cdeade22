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

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    #: On the first event of a programme stored under an alias: the clinic's own
    #: programme_id, recorded in the same transaction (domain/programme_aliases.py).
    alias_of: UUID | None = None


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
    clinic_position: int | None = None  # its number among its clinic's events


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
    clinic_position: int | None = None  # its number among its clinic's events


class HistorySource(Protocol):
    """Where a programme's history can be read: the ledger, or a copy of it."""

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]: ...


#: What makes an event's id unique: its clinic and its event_id (each clinic's
#: event ids are its own idempotency keys; two clinics may use the same one),
#: the id as its 32 hex digits (`Save`).
EventKey = tuple[str, str]


@dataclass(frozen=True)
class Save:
    """One save: new stored events, and the ledger entry of each.

    Its ids are also kept as their 32 hex digits, worked out once as it is
    made: the stores write them so, and screen and number a thousand saves a
    bulk chunk by them (a UUID hashes with a Python call, a string's hash is
    kept)."""

    stored_events: Sequence[StoredEvent]
    ledger: Sequence[LedgerEntry]
    #: Each stored event's programme id, hex.
    programme_hexes: list[str] = field(init=False, repr=False, compare=False)
    #: (clinic, event_id hex) of each event: an event_id is unique within its clinic.
    event_keys: list[EventKey] = field(init=False, repr=False, compare=False)
    #: The versions this save gives each programme (by its hex), in order.
    versions: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    #: Whether an event of it starts its programme under an alias (rare: the
    #: stores look for the alias rows only in the saves that have one).
    has_alias: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One pass (most saves of a bulk chunk have one event: a pass per
        # attribute cost more than the work in it).
        programme_hexes: list[str] = []
        event_keys: list[EventKey] = []
        versions: dict[str, list[int]] = {}
        has_alias = False
        for stored, entry in zip(self.stored_events, self.ledger, strict=True):
            programme_id = stored.originator_id  # the library hands a UUID or its text
            programme_hex = (programme_id.hex if type(programme_id) is UUID
                             else UUID(str(programme_id)).hex)
            programme_hexes.append(programme_hex)
            event_keys.append((entry.clinic_id, entry.event_id.hex))
            numbers = versions.get(programme_hex)
            if numbers is None:
                versions[programme_hex] = [stored.originator_version]
            else:
                numbers.append(stored.originator_version)
            if entry.alias_of is not None:
                has_alias = True
        # Frozen: set as the dataclass's own __init__ sets its fields.
        object.__setattr__(self, "programme_hexes", programme_hexes)
        object.__setattr__(self, "event_keys", event_keys)
        object.__setattr__(self, "versions", versions)
        object.__setattr__(self, "has_alias", has_alias)


#: Why a save is refused before anything is written (IntegrityError: a conflict).
OVERTAKEN = "another writer saved to this programme first"
EVENT_ID_RECORDED = "an event_id of this save is already recorded"

#: What writing several saves at once gives each: its positions, or the
#: IntegrityError it alone was refused with.
Outcome = Sequence[int] | IntegrityError


def screen(saves: Sequence[Save], last_versions: Mapping[str, int],
           recorded_event_keys: Iterable[EventKey]) -> dict[int, IntegrityError]:
    """The saves of a group the store must refuse, by index, before writing anything.
    (PostgreSQL screens single-event saves by a twin of this in the server,
    migration 0011; tests/storage/test_save_function.py holds it to this.)

    `last_versions` (each programme's last version, by its hex) and
    `recorded_event_keys` are what the store holds of the group's programmes
    and (clinic, event_id hex)s, read under its write lock. A save is refused when
    - an event_id of it is recorded already in its clinic, or twice in the group;
    - it does not continue a programme's versions: its first must be one more
      than the programme's last (any, for a programme with no events yet),
      the rest consecutive (otherwise another writer saved first);
    - an earlier save of the group to the same programme was refused: it was
      made on top of that one.
    """
    last = dict(last_versions)
    seen = set(recorded_event_keys)
    refused: dict[int, IntegrityError] = {}
    refused_programmes: set[str] = set()
    for index, save in enumerate(saves):
        keys, versions = save.event_keys, save.versions
        if not seen.isdisjoint(keys) or (len(keys) > 1 and len(set(keys)) < len(keys)):
            refused[index] = IntegrityError(EVENT_ID_RECORDED)
        elif not _continues(versions, last) or (
                refused_programmes and not refused_programmes.isdisjoint(versions)):
            refused[index] = IntegrityError(OVERTAKEN)
        else:
            seen.update(keys)
            for programme, numbers in versions.items():
                last[programme] = numbers[-1]
            continue
        refused_programmes.update(versions)
    return refused


def _continues(versions: Mapping[str, list[int]], last: Mapping[str, int]) -> bool:
    """Whether each programme's versions run on, one by one, from its last."""
    for programme, numbers in versions.items():
        first, before = numbers[0], last.get(programme)
        if (before is not None and first != before + 1) or (
                len(numbers) > 1 and numbers != list(range(first, first + len(numbers)))):
            return False
    return True


class Ledger(Protocol):
    """The queries the application makes of the ledger."""

    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        """Several saves in one transaction, refusing (`screen`) the ones that
        would break a unique key or a programme's run of versions."""
        ...

    def entries_by_event_id(self, clinic_id: str | None, event_ids: Sequence[UUID]
                            ) -> list[RecordedEntry]:
        """The clinic's entries of these event ids (another clinic's are never
        looked at: event ids are unique per clinic); with None, every clinic's
        (for the audit and erasures, which check the programme too)."""
        ...

    def entries_of_programme(self, programme_id: UUID,
                             versions: tuple[int, int] | None = None) -> list[RecordedEntry]:
        """The programme's entries in position order; with `versions` (first,
        last), only those of versions first..last."""
        ...

    def owners(self, programme_ids: Collection[UUID]) -> dict[UUID, str]:
        """The clinic of each of these programmes that has events (one index lookup
        each, from its first ledger entry, whatever its length: a tenancy check
        costs the same for a long programme, a short one and none)."""
        ...

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None: ...

    def aliases(self, stored_ids: Collection[UUID]) -> dict[UUID, UUID]:
        """The clinic's programme_id of each of these stored ids that is an alias."""
        ...

    def events_after(self, versions: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """Each programme's stored events after the version given for it, in order
        (one query for many programmes: bulk ingest brings them up to date)."""
        ...

    def events_since(self, programme_id: UUID, version: int, clinic_id: str,
                     event_id: UUID) -> tuple[list[StoredEvent], bool]:
        """The programme's stored events after `version`, in order, and whether the
        clinic has recorded this event id, in one read: a post brings its cached
        programme up to date and finds out whether it is a retry (of which its first
        event id tells: a retry repeats them all) at once."""
        ...

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
    once per clinic: a save that repeats one fails with IntegrityError, as it does in
    the stores' unique index, and records nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[int, RecordedEntry] = {}
        #: event_id -> {clinic: position} (an event_id is unique per clinic)
        self._positions_by_event_id: dict[UUID, dict[str, int]] = {}
        self._owners: dict[UUID, str] = {}
        self._clinic_counts: dict[str, int] = {}
        self._aliases: dict[UUID, tuple[str, UUID]] = {}
        self._recorded_at = datetime.min.replace(tzinfo=UTC)

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                       ) -> Sequence[int] | None:
        with self._database_lock:
            entries = ledger_entries_for(stored_events, kwargs.get("ledger"))
            event_keys = [(entry.clinic_id, entry.event_id) for entry in entries]
            if len(set(event_keys)) < len(event_keys) or any(
                    clinic in self._positions_by_event_id.get(event_id, ())
                    for clinic, event_id in event_keys):
                raise IntegrityError("an event_id is already recorded")
            positions = super()._insert_events(stored_events, **kwargs)
            assert positions is not None
            self._recorded_at = max(datetime.now(UTC), self._recorded_at)
            saved: dict[Any, int] = {}
            for stored in stored_events:
                saved[stored.originator_id] = max(saved.get(stored.originator_id, 0),
                                                  stored.originator_version)
            for position, stored, entry in zip(positions, stored_events, entries, strict=True):
                clinic_position = self._clinic_counts.get(entry.clinic_id, 0) + 1
                self._clinic_counts[entry.clinic_id] = clinic_position
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
                    clinic_position=clinic_position,
                )
                self._positions_by_event_id.setdefault(entry.event_id, {})[
                    entry.clinic_id] = position
                self._owners.setdefault(UUID(str(stored.originator_id)), entry.clinic_id)
                if entry.alias_of is not None:
                    self._aliases.setdefault(UUID(str(stored.originator_id)),
                                             (entry.clinic_id, entry.alias_of))
            return positions

    # ---- the Ledger port ----------------------------------------------------

    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        with self._database_lock:
            last: dict[str, int] = {}
            for save in saves:
                for programme_hex in save.versions:
                    recorded = self.select_events(UUID(programme_hex), desc=True, limit=1)
                    if recorded:
                        last[programme_hex] = recorded[0].originator_version
            refused = screen(saves, last, [
                key for save in saves for entry, key in zip(save.ledger, save.event_keys,
                                                            strict=True)
                if entry.clinic_id in self._positions_by_event_id.get(entry.event_id, ())])
            return [refused[index] if index in refused
                    else self.insert_events(save.stored_events, ledger=save.ledger)
                    for index, save in enumerate(saves)]  # type: ignore[misc]

    def entries_by_event_id(self, clinic_id: str | None, event_ids: Sequence[UUID]
                            ) -> list[RecordedEntry]:
        with self._database_lock:
            positions = sorted(
                position for event_id in set(event_ids)
                for clinic, position in self._positions_by_event_id.get(event_id, {}).items()
                if clinic_id in (None, clinic))
            return [self._entries[p] for p in positions]

    def entries_of_programme(self, programme_id: UUID,
                             versions: tuple[int, int] | None = None) -> list[RecordedEntry]:
        with self._database_lock:
            return [e for _, e in sorted(self._entries.items())
                    if e.programme_id == programme_id
                    and (versions is None or versions[0] <= e.version <= versions[1])]

    def owners(self, programme_ids: Collection[UUID]) -> dict[UUID, str]:
        with self._database_lock:
            return {programme_id: self._owners[programme_id] for programme_id in programme_ids
                    if programme_id in self._owners}

    def aliases(self, stored_ids: Collection[UUID]) -> dict[UUID, UUID]:
        with self._database_lock:
            return {stored_id: self._aliases[stored_id][1] for stored_id in stored_ids
                    if stored_id in self._aliases}

    def events_since(self, programme_id: UUID, version: int, clinic_id: str,
                     event_id: UUID) -> tuple[list[StoredEvent], bool]:
        with self._database_lock:
            recorded = clinic_id in self._positions_by_event_id.get(event_id, ())
        return list(self.select_events(programme_id, gt=version)), recorded

    def events_after(self, versions: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        found = {programme_id: list(self.select_events(programme_id, gt=version))
                 for programme_id, version in versions.items()}
        return {programme_id: events for programme_id, events in found.items() if events}

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
                clinic_position=entry.clinic_position if entry else None,
            ))
        return history

    def log_rows(self, after: int, limit: int) -> list[tuple[int, int, int, str, bytes]]:
        """(position, programme id as an int, version, topic, state) after `after`, as the
        stores' recorders give them to the projections."""
        return [(n.id, UUID(str(n.originator_id)).int, n.originator_version, n.topic, n.state)
                for n in self.select_notifications(after + 1, limit)]
