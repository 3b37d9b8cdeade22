"""What both stores' recorders share: building ledger rows for new events."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from itertools import count, islice
from typing import Any, NamedTuple
from uuid import UUID

from domain.ledger import RecordedEntry, Save
from service.storage import chain

#: Columns of the ledger table, in insert order.
LEDGER_COLUMNS = (
    "position", "programme_id", "version", "event_id", "clinic_id", "event_type",
    "recorded_at", "content_digest", "saved_version", "chain_hash",
)


class NewRow(NamedTuple):
    """A ledger row about to be inserted (fields in LEDGER_COLUMNS order, then the
    ids' 32 hex digits, worked out once for the chain hash and the inserts)."""

    position: int
    programme_id: UUID
    version: int
    event_id: UUID
    clinic_id: str
    event_type: str
    recorded_at: datetime
    content_digest: str | None
    saved_version: int
    chain_hash: str
    programme_hex: str
    event_hex: str


def alias_rows(saves: Sequence[Save]) -> list[tuple[str, str, str]]:
    """(stored id, clinic, the clinic's programme_id) of each programme these saves
    start under an alias (domain/programme_aliases.py): rows for `programme_aliases`,
    written in the saves' transaction. None, in the normal case (so only the
    saves that have one are looked through: this runs on every bulk chunk)."""
    return [(str(as_uuid(stored.originator_id)), entry.clinic_id, str(entry.alias_of))
            for save in saves if save.has_alias
            for stored, entry in zip(save.stored_events, save.ledger, strict=True)
            if entry.alias_of is not None]


def ledger_rows(
    saves: Sequence[Save],
    first_position: int,
    previous_hash: str,
    previous_recorded_at: datetime | None,
) -> list[NewRow]:
    """Ledger rows for the saves' events, about to be inserted in this order at
    first_position onwards, chained from previous_hash.

    Called under the store's write lock, so positions and the chain are
    assigned in commit order. One transaction, one record time.
    """
    now = datetime.now(UTC)
    # Record times never go backwards along the log, so `as_of` is a prefix.
    # Always UTC: the value read back from PostgreSQL carries the session's
    # time zone, and its text form goes into the chain hash.
    recorded_at = max(now, previous_recorded_at).astimezone(UTC) if previous_recorded_at else now
    # Each event with its save's hex ids (Save: worked out once) and the
    # programme's version after its save (events of several programmes in one
    # save each get their own programme's).
    stored = [(event, entry, programme_hex, event_hex, max(save.versions[programme_hex]))
              for save in saves
              for event, entry, programme_hex, (_, event_hex) in zip(
                  save.stored_events, save.ledger, save.programme_hexes, save.event_keys,
                  strict=True)]
    hashes = chain.entry_hashes(
        previous_hash,
        ((position, programme_hex, event.originator_version, event.topic, event.state,
          event_hex, entry.clinic_id)
         for position, (event, entry, programme_hex, event_hex, _) in zip(
             count(first_position), stored)),
        recorded_at)
    return [NewRow(position, as_uuid(event.originator_id), event.originator_version,
                   entry.event_id, entry.clinic_id, entry.event_type, recorded_at,
                   entry.content_digest, saved_version, chain_hash, programme_hex, event_hex)
            for position, (event, entry, programme_hex, event_hex, saved_version), chain_hash
            in zip(count(first_position), stored, hashes)]


def numbers_in_clinics(rows: Sequence[NewRow], last: dict[str, int]) -> list[int]:
    """Each row's number among its clinic's events (`clinic_position`), counting on
    from `last`, each clinic's last number, read under the store's write lock (as
    the trigger of migration 0006 would number a row inserted without one)."""
    last = dict(last)
    numbers = []
    for row in rows:
        number = last.get(row.clinic_id, 0) + 1
        last[row.clinic_id] = number
        numbers.append(number)
    return numbers


def as_uuid(value: UUID | str) -> UUID:
    """An originator id as a UUID (the library hands over either)."""
    return value if isinstance(value, UUID) else UUID(value)


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
        clinic_position=row["clinic_position"],
    )


#: How many numbered events a recorder remembers at least (twice as many at most).
NUMBERS_KEPT = 10_000


class RecentClinicNumbers:
    """The clinic positions (service/storage/clinic_positions.py) this process's
    recorder gave the events it recorded last, by global position.

    A receipt is shown with its clinic's positions: remembered as each save
    commits, they are answered without a query after it. A position's clinic
    and number never change once committed, so only committed rows are kept,
    and what is kept stays true; what is not kept (or was recorded by another
    process) is asked of the store.

    The last `kept` at least are remembered, in two generations: the newer one
    fills until it holds `kept`, then becomes the older one and the oldest is
    dropped whole. Forgetting one at a time (an OrderedDict, oldest first out)
    cost a Python step per row of every bulk chunk."""

    def __init__(self, kept: int = NUMBERS_KEPT) -> None:
        self.kept = kept
        self._newer: dict[int, tuple[str, int]] = {}
        self._older: dict[int, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def keep(self, numbered: Iterable[tuple[int, str, int]]) -> None:
        """(global position, clinic, clinic position) of committed ledger rows."""
        rows = {position: (clinic_id, clinic_position)
                for position, clinic_id, clinic_position in numbered}
        if len(rows) > self.kept:  # more than is remembered: its last rows
            rows = dict(islice(rows.items(), len(rows) - self.kept, None))
        with self._lock:
            self._newer.update(rows)
            if len(self._newer) >= self.kept:
                self._older, self._newer = self._newer, {}

    def of(self, clinic_id: str, positions: Collection[int]) -> dict[int, int]:
        """The clinic's numbers of those of `positions` it remembers as the clinic's."""
        found: dict[int, int] = {}
        with self._lock:
            newer, older = self._newer, self._older
            for position in positions:
                known = newer.get(position) or older.get(position)
                if known is not None and known[0] == clinic_id:
                    found[position] = known[1]
        return found
