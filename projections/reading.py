"""What the API reads from the projections: JSON bodies, ready to send.

Every read answers with the position of the live version it read (a
consistency token: the read reflects every event up to it), and may first
wait, for a bounded time, until the projection has processed a position the
client already knows about (`min_position`, e.g. from a receipt).

The stored summaries and dashboards are JSON already: a read joins the
stored strings instead of parsing and re-serializing them.

Each read also carries a digest of its body (the HTTP layer's ETag). A worker
keeps the reads it answered, and the projection's marker (its live version,
its position and its parked events: whatever changes when a row does), in
memory: while the marker has not changed, nothing a read shows can have
changed, so the same read is answered from memory, and a client that already
holds it is told so without the store being asked at all. The marker is read
again at most every `staleness` seconds, and at once when a client asks for
a position beyond it (`min_position`): a read without `min_position` may be
that much older than the projection, never older than what the client says
it has seen.

With a read replica, each read (and its wait for min_position) is made on the
replica's copy of the read models, or, while the replica cannot be reached,
on the primary's (service/storage/replica.py); each copy has its own marker
and its own reads in memory. Either way the answer carries the position of
the copy it was read from, and is never older than a min_position asked for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from uuid import UUID

from projections import dashboards, network, summaries
from projections.store import DEFAULT_PROJECTION, Marker, ReadModelStore, to_json
from service.storage.clinic_positions import ClinicPositions
from service.storage.replica import Replica

#: How long a read waits for ?min_position by default (seconds).
DEFAULT_MIN_POSITION_WAIT = 2.0
#: How old the projection's position known to a worker may be (seconds).
DEFAULT_STALENESS = 0.2
#: Bytes of read bodies a worker keeps (the least recently used go first).
READ_CACHE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Read:
    """A read's JSON body, the position it reflects, and a digest of the body."""

    position: int
    body: str
    digest: str
    #: The projection's marker on the copy it was read from, when it was read: the
    #: read stays what it is while the marker does (None: not known).
    valid_while: Marker | None = field(default=None, compare=False)

    @classmethod
    def of(cls, position: int, body: str, valid_while: Marker | None = None) -> Read:
        # A digest of the body alone: it changes exactly when the body does,
        # and says nothing about the rest of the network.
        return cls(position, body, hashlib.blake2b(body.encode(), digest_size=12).hexdigest(),
                   valid_while)


class ReadCache:
    """The reads a worker answered, each valid while the projection's marker
    (`ReadModelStore.live_marker`) stays what it was when the read was made
    (bounded in bytes, the least recently used first out)."""

    def __init__(self, max_bytes: int = READ_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._reads: OrderedDict[tuple[str, ...], tuple[Marker, Read]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], marker: Marker) -> Read | None:
        with self._lock:
            found = self._reads.get(key)
            if found is None or found[0] != marker:
                return None
            self._reads.move_to_end(key)
            return found[1]

    def put(self, key: tuple[str, ...], marker: Marker, read: Read) -> None:
        size = len(read.body)
        if size > self.max_bytes // 8:
            return  # a huge page would push out everything else
        with self._lock:
            old = self._reads.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1].body)
            self._reads[key] = (marker, read)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._reads.popitem(last=False)
                self._bytes -= len(evicted.body)


class ProjectionBehind(Exception):
    """The projection has not processed `wanted` within the wait."""

    def __init__(self, position: int, wanted: int) -> None:
        super().__init__(f"the projection is at position {position}, not yet {wanted}")
        self.position = position
        self.wanted = wanted


class InvalidCursor(ValueError):
    pass


class TooManyWaits(Exception):
    """A read would wait for min_position while its caller, or this worker, already
    has as many reads waiting as it may."""


#: Reads a worker lets wait for min_position at once, by default (TRACTION_MIN_POSITION_WAITERS).
DEFAULT_WAITERS = 2
#: Of those, how many one caller may have (TRACTION_MIN_POSITION_WAITERS_PER_TOKEN).
DEFAULT_WAITERS_PER_CALLER = 1


class WaitSlots:
    """How many reads of this worker wait for min_position at once, in all and per
    caller: a wait holds one of the worker's threads, so without a bound one caller
    asking for a position far ahead could hold them all. A read that finds no slot
    free is refused at once (TooManyWaits); a read that needs no wait takes none."""

    def __init__(self, per_worker: int = DEFAULT_WAITERS,
                 per_caller: int = DEFAULT_WAITERS_PER_CALLER) -> None:
        self.per_worker = per_worker
        self.per_caller = per_caller
        self._waiting = 0
        self._by_caller: dict[str | None, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def held(self, caller: str | None) -> Iterator[None]:
        with self._lock:
            mine = self._by_caller.get(caller, 0)
            if self._waiting >= self.per_worker or mine >= self.per_caller:
                raise TooManyWaits
            self._waiting += 1
            self._by_caller[caller] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1
                left = self._by_caller[caller] - 1
                if left:
                    self._by_caller[caller] = left
                else:
                    del self._by_caller[caller]

    def waiting(self) -> int:
        with self._lock:
            return self._waiting


def encode_cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, programme_id = text.split(":", 1)
        return int(started), str(UUID(programme_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor this service gave out") from None


class Copy:
    """One copy of the read models (the primary's, or a replica's) as a worker
    reads it: the projection's marker, read at most `staleness` ago, and the
    reads it answered while the marker held."""

    def __init__(self, read_models: ReadModelStore, name: str, staleness: float) -> None:
        self.read_models = read_models
        self.name = name
        self.staleness = staleness
        self.cache = ReadCache()
        #: What this worker knows of the projection on this copy, and since when.
        self._known: tuple[Marker, float] = (Marker(-1, -1, -1, -1), float("-inf"))

    def marker(self, at_least: int | None = None) -> Marker:
        """The projection's marker, as read at most `staleness` ago, or read now
        when that is older or its position behind `at_least`."""
        marker, read_at = self._known
        if (time.monotonic() - read_at <= self.staleness
                and (at_least is None or marker.position >= at_least)):
            return marker
        read_at = time.monotonic()
        marker = self.read_models.live_marker(self.name)
        self._known = (marker, read_at)  # one assignment: threads see a whole pair
        return marker

    def wait_for(self, min_position: int | None, deadline: float,
                 slot: AbstractContextManager[None] | None = None) -> Marker:
        """Wait until the projection has processed min_position (ProjectionBehind
        past `deadline`); its marker now. A wait is made holding `slot`
        (TooManyWaits from it: refused at once)."""
        marker = self.marker(at_least=min_position)
        if min_position is None or marker.position >= min_position:
            return marker
        with slot or nullcontext():
            pause = 0.002
            while marker.position < min_position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProjectionBehind(marker.position, min_position)
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, 0.025)
                marker = self.marker(at_least=min_position)
        return marker

    def read(self, key: tuple[str, ...],
             load: Callable[[ReadModelStore], tuple[int, str | None]],
             marker: Marker) -> Read | None:
        """The read of `key`: from memory while the projection's marker (as just
        read by `wait_for`) has not changed, else `load`ed from this copy (None:
        nothing there)."""
        cached = self.cache.get(key, marker)
        if cached is not None:
            return cached
        # Loaded after the marker was read: at least as new as it, so valid
        # for as long as the marker stays the same.
        position, body = load(self.read_models)
        if body is None:
            return None
        read = Read.of(position, body, marker)
        self.cache.put(key, marker, read)
        return read


#: What opens a summary's sealed patient_ref: (programme id, sealed value) -> value.
Opener = Callable[[str, str], str]

#: The clinic's own programme_id of each stored id that is an alias (two clinics may
#: use one programme_id: domain/programme_aliases.py); the others are their own.
ClinicProgrammeIds = Callable[[Iterable[UUID]], dict[UUID, UUID]]

#: How a summary row (compact JSON) names its programme.
_PROGRAMME_ID = '"programme_id":"'

#: How the projection keeps a sealed patient_ref in a summary row (its JSON).
_SEALED_REF = '"patient_ref":"sealed:'


def _opened(row: str, opener: Opener | None) -> str:
    """A summary row (JSON) with its patient_ref opened. The projection never
    opens it: it copies the sealed value from the event, and the erasure replaces
    it with the marker; only a read that shows it to a clinic opens it."""
    if opener is None or _SEALED_REF not in row:
        return row
    summary = json.loads(row)
    summary["patient_ref"] = opener(summary["programme_id"], summary["patient_ref"])
    return to_json(summary)


class Reader:
    """Reads of one projection's live version, for the API."""

    def __init__(self, read_models: ReadModelStore, name: str = DEFAULT_PROJECTION, *,
                 min_position_wait: float = DEFAULT_MIN_POSITION_WAIT,
                 staleness: float = DEFAULT_STALENESS,
                 replica: Replica | None = None,
                 replica_read_models: ReadModelStore | None = None,
                 opener: Opener | None = None,
                 slots: WaitSlots | None = None,
                 clinic_positions: ClinicPositions | None = None,
                 clinic_programme_ids: ClinicProgrammeIds | None = None) -> None:
        self.read_models = read_models
        #: Summaries show the clinic's own programme_id (None: stored ids, as stored).
        self.clinic_programme_ids = clinic_programme_ids
        #: Opens the sealed patient_ref of the summaries it shows (None: shown sealed).
        self.opener = opener
        #: A clinic's summaries show its own positions (service/storage/clinic_positions.py).
        self.clinic_positions = clinic_positions
        #: The reads of this worker allowed to wait at once, in all and per caller.
        self.slots = slots or WaitSlots()
        self.name = name
        #: How long a read waits for ?min_position (TRACTION_MIN_POSITION_WAIT).
        self.min_position_wait = min_position_wait
        #: How old the position this worker knows may be (TRACTION_READ_STALENESS).
        self.staleness = staleness
        self.primary = Copy(read_models, name, staleness)
        self.replica = replica
        self.on_replica = (Copy(replica_read_models, name, staleness)
                           if replica is not None and replica_read_models is not None else None)

    def position(self, at_least: int | None = None) -> int:
        """The projection's position on the primary (see `Copy.marker`)."""
        return self.primary.marker(at_least).position

    def wait_for(self, min_position: int | None, timeout: float | None = None, *,
                 caller: str | None = None) -> int:
        """Wait until the primary's projection has processed min_position; its position."""
        timeout = self.min_position_wait if timeout is None else timeout
        return self.primary.wait_for(min_position, time.monotonic() + timeout,
                                     self.slots.held(caller)).position

    def _read(self, key: tuple[str, ...],
              load: Callable[[ReadModelStore], tuple[int, str | None]],
              min_position: int | None, caller: str | None) -> Read | None:
        """The read on the copy that answers, once it has processed min_position
        (one wait of TRACTION_MIN_POSITION_WAIT, whichever copy answers, in one of
        the worker's wait slots: TooManyWaits if none is free)."""
        deadline = time.monotonic() + self.min_position_wait

        def on(copy: Copy) -> Read | None:
            # One look at the marker serves the wait and the cache's check.
            marker = copy.wait_for(min_position, deadline, self.slots.held(caller))
            return copy.read(key, load, marker)

        if self.replica is None or self.on_replica is None:
            return on(self.primary)
        replica = self.on_replica
        return self.replica.read(lambda: on(replica), lambda: on(self.primary))

    def programmes(self, clinic_id: str, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50, min_position: int | None = None,
                   caller: str | None = None, clinic_positions: bool = False) -> Read:
        """A page of a clinic's programme summaries, newest first, and the next cursor."""
        after = decode_cursor(cursor) if cursor else None

        def load(models: ReadModelStore) -> tuple[int, str]:
            position, rows, following = models.summaries_page(
                self.name, clinic_id, status, after, limit
            )
            following_cursor = to_json(encode_cursor(following)) if following else "null"
            rows = self._clinics_ids([_opened(row, self.opener) for row in rows])
            if clinic_positions:
                rows = self._clinic_numbered(clinic_id, rows)
            return position, f'{{"programmes":[{",".join(rows)}],"next":{following_cursor}}}'

        read = self._read(("programmes", clinic_id, status or "", cursor or "", str(limit),
                           "clinic" if clinic_positions else "global"),
                          load, min_position, caller)
        assert read is not None
        return read

    def summary(self, clinic_id: str, programme_id: UUID, *,
                min_position: int | None = None, caller: str | None = None,
                clinic_positions: bool = False) -> Read | None:
        """One programme's summary with its pain trajectory (None: not in this clinic)."""

        def load(models: ReadModelStore) -> tuple[int, str | None]:
            position, summary, state = models.summary(self.name, clinic_id, str(programme_id))
            if summary is None or state is None:
                return position, None
            trajectory = to_json(summaries.trajectory(json.loads(state)))
            summary = self._clinics_ids([_opened(summary, self.opener)])[0]
            if clinic_positions:
                summary = self._clinic_numbered(clinic_id, [summary])[0]
            return position, f'{summary[:-1]},"pain_trajectory":{trajectory}}}'

        return self._read(("summary", clinic_id, str(programme_id),
                           "clinic" if clinic_positions else "global"), load, min_position,
                          caller)

    def _clinics_ids(self, rows: list[str]) -> list[str]:
        """Summaries (stored JSON) under their clinic's own programme_id. Only a
        version-5 stored id can be an alias: for the others nothing is looked up
        and the rows are returned as they are."""
        if self.clinic_programme_ids is None:
            return rows
        candidates: dict[int, str] = {}
        for index, row in enumerate(rows):
            at = row.find(_PROGRAMME_ID) + len(_PROGRAMME_ID)
            if at >= len(_PROGRAMME_ID) and row[at + 14:at + 15] == "5":
                candidates[index] = row[at:at + 36]
        if not candidates:
            return rows
        aliases = self.clinic_programme_ids([UUID(text) for text in candidates.values()])
        rows = list(rows)
        for index, text in candidates.items():
            clinics = aliases.get(UUID(text))
            if clinics is not None:
                rows[index] = rows[index].replace(_PROGRAMME_ID + text,
                                                  _PROGRAMME_ID + str(clinics), 1)
        return rows

    def _clinic_numbered(self, clinic_id: str, rows: list[str]) -> list[str]:
        """Summaries (stored JSON) with the clinic's own positions in place of the
        global ones: made once per change, when the read is loaded, not per request."""
        if self.clinic_positions is None or not rows:
            return rows
        parsed = [json.loads(row) for row in rows]
        fields = ("position", "held_since_position")
        numbers = self.clinic_positions.of_events(
            clinic_id, {row[key] for row in parsed for key in fields if row.get(key)})
        for row in parsed:
            for key in fields:
                if row.get(key):
                    row[key] = numbers.get(row[key]) or self.clinic_positions.at(clinic_id,
                                                                                 row[key])
        return [to_json(row) for row in parsed]

    def clinic(self, clinic_id: str, *, min_position: int | None = None,
               caller: str | None = None) -> Read:
        """A clinic's dashboard (all zero before its first programme)."""

        def load(models: ReadModelStore) -> tuple[int, str]:
            position, dashboard = models.clinic_dashboard(self.name, clinic_id)
            if dashboard is None:
                dashboard = to_json(dashboards.clinic_dashboard(clinic_id,
                                                                dashboards.new_totals()))
            return position, dashboard

        read = self._read(("clinic", clinic_id), load, min_position, caller)
        assert read is not None
        return read

    def network(self, *, min_position: int | None = None, caller: str | None = None) -> Read:
        """Every clinic's dashboard and the network's totals."""

        def load(models: ReadModelStore) -> tuple[int, str]:
            position, clinics, totals = models.network(self.name)
            if totals is None:
                totals = to_json(dashboards.network_dashboard(dashboards.new_totals(), {}))
            return position, network.network_body(clinics, totals)

        read = self._read(("network",), load, min_position, caller)
        assert read is not None
        return read
