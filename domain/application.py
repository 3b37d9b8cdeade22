"""Programmes: the application that records and replays programme histories.

Commands arrive as client envelopes (`EventEnvelope`); the application checks
idempotency (rule 6) and `expected_version` (rule 7), runs each envelope as a
command on the `Programme` aggregate (rules 1-5), and saves all resulting
events in one transaction (rule 8). Beside every stored event the store keeps a
ledger entry: the client's event_id, the clinic, the record time, a digest of
the posted content and the event's gap-free global position. The ledger is
what makes idempotent retries, `as_of` queries and positions possible; its
storage lives in `service/storage`, behind the `Ledger` protocol below.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain import errors, stored
from domain.programme import Programme


def utc_now() -> datetime:
    """The server's clock (rule 4 measures occurred_at against it)."""
    return datetime.now(UTC)


#: How many times a command is re-run after losing a race with another writer
#: (only without expected_version; with it, the re-run reports the mismatch).
CONCURRENT_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class EventEnvelope:
    """One event as a clinic system posted it (already validated)."""

    event_id: UUID
    type: str
    occurred_at: datetime
    recorded_by: str
    data: dict[str, Any]

    def content_digest(self, programme_id: UUID) -> str:
        """A digest of everything that makes this event what it is, for rule 6."""
        canonical = json.dumps(
            {
                "programme_id": str(programme_id),
                "type": self.type,
                "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
                "recorded_by": self.recorded_by,
                "data": self.data,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


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


class HistoryRow(NamedTuple):
    """A stored event of one programme as the store holds it, with its ledger entry.
    (A tuple: a history builds hundreds of them per request.)"""

    version: int
    topic: str
    state: bytes | str  # the library's stored state (JSON, unless compressed or encrypted)
    position: int | None  # None only if the ledger row is missing (the audit reports it)
    recorded_at: str | None  # RFC 3339, UTC


class Ledger(Protocol):
    """Queries over the ledger entries, implemented by the store's recorder."""

    def entries_by_event_id(self, event_ids: Sequence[UUID]) -> list[RecordedEntry]: ...

    def entries_of_programme(self, programme_id: UUID) -> list[RecordedEntry]: ...

    def history_rows(self, programme_id: UUID) -> list[HistoryRow]: ...

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None: ...


@dataclass(frozen=True)
class Receipt:
    """The outcome of a post: what was recorded, or what had been recorded before."""

    programme_id: UUID
    clinic_id: str
    version: int
    recorded: list[dict[str, Any]]
    replayed: bool  # True when every event had been recorded before (nothing new)

    def body(self) -> dict[str, Any]:
        return {
            "programme_id": str(self.programme_id),
            "clinic_id": self.clinic_id,
            "version": self.version,
            "recorded": self.recorded,
        }


def receipt_from_entries(entries: Sequence[RecordedEntry], replayed: bool) -> Receipt:
    first = entries[0]
    return Receipt(
        programme_id=first.programme_id,
        clinic_id=first.clinic_id,
        version=max(e.saved_version for e in entries),
        recorded=[
            {
                "event_id": str(e.event_id),
                "type": e.event_type,
                "version": e.version,
                "position": e.position,
            }
            for e in sorted(entries, key=lambda e: e.position)
        ],
        replayed=replayed,
    )


class Programmes(Application[UUID]):
    """Records lumbar traction programmes and replays their histories."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        #: Called with every receipt handed out (recorded or replayed), e.g. to count them.
        self.receipt_listeners: list[Callable[[Receipt], None]] = []
        self._command_locks: dict[UUID, tuple[threading.Lock, int]] = {}
        self._command_locks_guard = threading.Lock()

    @property
    def ledger(self) -> Ledger:
        return self.recorder  # type: ignore[return-value]

    # ---- commands -------------------------------------------------------

    def record_events(
        self,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None = None,
    ) -> Receipt:
        """Record the envelopes as one atomic save, or replay an identical earlier post.

        New events are the common case, so they are tried first: the ledger's
        unique event_id makes a duplicate fail the save. Only when a post
        fails (a duplicate, a race, a refused rule, a version mismatch) do we
        look for an earlier identical post, which wins over the failure: a
        retry of a discharge is a 200, not "programme discharged".
        """
        with self._command_lock(programme_id):
            receipt = self._record_with_retries(clinic_id, programme_id, envelopes,
                                                expected_version)
        for listener in self.receipt_listeners:
            listener(receipt)
        return receipt

    @contextmanager
    def _command_lock(self, programme_id: UUID) -> Iterator[None]:
        """One command at a time per programme in this process.

        Two threads running commands on one programme at once would both
        start from the same version, and one would fail at the store and run
        again; worse, inside a group commit (service/storage/group_commit.py)
        it would fail the whole group. Other processes still race, and the
        store still refuses the loser.
        """
        with self._command_locks_guard:
            lock, users = self._command_locks.get(programme_id, (threading.Lock(), 0))
            self._command_locks[programme_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._command_locks_guard:
                lock, users = self._command_locks[programme_id]
                if users == 1:
                    del self._command_locks[programme_id]
                else:
                    self._command_locks[programme_id] = (lock, users - 1)

    def _record_with_retries(
        self,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
    ) -> Receipt:
        for attempt in range(CONCURRENT_WRITE_ATTEMPTS):
            try:
                return self._record_new(clinic_id, programme_id, envelopes, expected_version)
            except IntegrityError:
                # Another writer saved to this programme, or these event ids,
                # first. Re-run: the next attempt sees what it saved.
                earlier = self._earlier_post(clinic_id, programme_id, envelopes)
                if earlier is not None:
                    return earlier
                if attempt == CONCURRENT_WRITE_ATTEMPTS - 1:
                    break
            except (errors.DomainRuleViolation, errors.ApplicationError):
                earlier = self._earlier_post(clinic_id, programme_id, envelopes)
                if earlier is not None:
                    return earlier
                raise
        raise errors.ConcurrentWrite(
            "other writers kept saving to this programme at the same moment; retry"
        )

    def _earlier_post(
        self, clinic_id: str, programme_id: UUID, envelopes: Sequence[EventEnvelope]
    ) -> Receipt | None:
        """Rule 6: the receipt of an identical earlier post, None if all are new."""
        found = {
            e.event_id: e
            for e in self.ledger.entries_by_event_id([env.event_id for env in envelopes])
        }
        if not found:
            return None
        differing = [
            str(env.event_id)
            for env in envelopes
            if env.event_id in found
            and (
                found[env.event_id].content_digest != env.content_digest(programme_id)
                or found[env.event_id].clinic_id != clinic_id
            )
        ]
        if differing:
            raise errors.EventIdConflict(
                "event_id already recorded with different content: " + ", ".join(differing),
                differing,
            )
        if len(found) < len(envelopes):
            new = [str(env.event_id) for env in envelopes if env.event_id not in found]
            raise errors.EventIdConflict(
                "part of this batch was recorded before and part was not "
                f"(new: {', '.join(new)}); a batch is recorded whole, so post only "
                "the new events",
                [str(k) for k in found],
            )
        # Include the events the aggregate recorded in the same save (the
        # pause after a severe adverse event), as the original receipt did.
        saved_versions = {e.saved_version for e in found.values()}
        same_save = [
            e
            for e in self.ledger.entries_of_programme(programme_id)
            if e.saved_version in saved_versions
        ]
        return receipt_from_entries(same_save, replayed=True)

    def _record_new(
        self,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
    ) -> Receipt:
        # The cached programme itself, not a copy: the command lock keeps every
        # other thread of this process away from it, and if anything below
        # fails it is dropped from the cache (it may hold events never saved).
        # Copying it for every command cost a fifth of a single-event post.
        programme = self._find(programme_id, copy=False)
        try:
            return self._run_and_save(programme, clinic_id, programme_id, envelopes,
                                      expected_version)
        except BaseException:
            self._drop_cached(programme_id)
            raise

    def _run_and_save(
        self,
        programme: Programme | None,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
    ) -> Receipt:
        if programme is not None and programme.clinic_id != clinic_id:
            if envelopes[0].type == "ProgrammeStarted":
                raise errors.ProgrammeIdTaken("this programme_id is already in use")
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        actual = programme.version if programme is not None else 0
        if expected_version is not None and expected_version != actual:
            raise errors.VersionConflict(expected_version, actual)
        if programme is None and envelopes[0].type != "ProgrammeStarted":
            raise errors.ProgrammeNotFound(
                "no such programme in this clinic; a new programme's first event "
                "must be ProgrammeStarted"
            )

        now = self.clock()
        for index, envelope in enumerate(envelopes):
            try:
                programme = self._apply(programme, clinic_id, programme_id, envelope, now)
            except errors.DomainRuleViolation as violation:
                violation.event_index = index
                violation.event_id = str(envelope.event_id)
                raise

        assert programme is not None
        pending = programme.pending_events  # collected by save() below
        digests = {env.event_id: env.content_digest(programme_id) for env in envelopes}
        ledger = [
            LedgerEntry(
                event_id=event.event_id,
                clinic_id=clinic_id,
                event_type=type(event).__name__,
                content_digest=digests.get(event.event_id),
            )
            for event in pending
        ]
        # The aggregate, not its events: the library checks each object it is
        # given against a runtime Protocol, which costs more than the event.
        recordings = self.save(programme, ledger=ledger)
        return Receipt(
            programme_id=programme_id,
            clinic_id=clinic_id,
            version=programme.version,
            recorded=[
                {
                    "event_id": str(r.domain_event.event_id),  # type: ignore[attr-defined]
                    "type": type(r.domain_event).__name__,
                    "version": r.domain_event.originator_version,
                    "position": r.notification.id,
                }
                for r in recordings
            ],
            replayed=False,
        )

    def _drop_cached(self, programme_id: UUID) -> None:
        if self.repository.cache is not None:
            try:
                self.repository.cache.get(programme_id, evict=True)
            except KeyError:
                pass

    @staticmethod
    def _apply(
        programme: Programme | None,
        clinic_id: str,
        programme_id: UUID,
        envelope: EventEnvelope,
        now: datetime,
    ) -> Programme:
        if envelope.type == "ProgrammeStarted":
            if programme is not None:
                raise errors.AlreadyStarted("the programme has already been started")
            return Programme.start(
                programme_id=programme_id,
                clinic_id=clinic_id,
                event_id=envelope.event_id,
                occurred_at=envelope.occurred_at,
                recorded_by=envelope.recorded_by,
                data=envelope.data,
                now=now,
            )
        if programme is None:
            raise errors.NotStarted("the first event of a programme must be ProgrammeStarted")
        command = getattr(programme, Programme.COMMANDS[envelope.type])
        command(envelope.event_id, envelope.occurred_at, envelope.recorded_by,
                envelope.data, now)
        return programme

    # ---- queries --------------------------------------------------------

    def _find(self, programme_id: UUID, version: int | None = None, *,
              copy: bool = True) -> Programme | None:
        """The programme (None if it has no events); `copy=False` only under its command lock."""
        try:
            return self.repository.get(programme_id, version=version,
                                       projector_func=_replay, deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None

    def programme(
        self,
        clinic_id: str,
        programme_id: UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Programme:
        """The programme now, after `version`, or as the service knew it `as_of`."""
        if as_of is not None:
            known = self.ledger.version_as_of(programme_id, as_of)
            if known is None:
                raise errors.ProgrammeNotFound("the programme did not exist at that time")
            version = known if version is None else min(version, known)
        if version is None:
            # The library fast-forwards a cached programme in place and copies
            # it after releasing its own lock: a command on the same programme
            # in another thread could change it under the copy.
            with self._command_lock(programme_id):
                programme = self._find(programme_id)
        else:
            programme = self._find(programme_id, version)
        if programme is None or programme.clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        if version is not None and programme.version != version:
            raise errors.ProgrammeNotFound(
                f"the programme has no version {version} (it is at version {programme.version})"
            )
        return programme

    def history(self, clinic_id: str, programme_id: UUID) -> list[dict[str, Any]]:
        """Every event of the programme in version order, with its ledger entry.

        Read straight from the stored JSON, with the ledger joined in one
        query: nothing here needs event objects, and the library's decoding
        (a Python hook per JSON object, a UUID and a datetime parsed per
        field) was most of the cost of a long history."""
        rows = self.ledger.history_rows(programme_id)
        states = stored.parse_states(self.mapper, [row.state for row in rows])
        for state in states:
            if isinstance(state, Exception):
                raise state  # a stored event the service cannot read: an error, loudly
        # The first event says whose programme it is: no need to replay it all.
        if not states or states[0].get("clinic_id") != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        items: list[dict[str, Any]] = []
        by_event_id: dict[str, dict[str, Any]] = {}
        for row, state in zip(rows, states, strict=True):
            event_id = stored.uuid_text(state["event_id"])
            type_name = stored.event_type(row.topic)
            item = {
                "event_id": event_id,
                "type": type_name,
                "version": row.version,
                "position": row.position,
                "occurred_at": stored.datetime_text(state["occurred_at"]),
                "recorded_at": row.recorded_at,
                "recorded_by": state["recorded_by"],
                "data": state["data"],
                "corrected_by": None,
            }
            if type_name == "EntryCorrected":
                # Corrections follow what they correct: the last one is in force.
                corrected = by_event_id.get(str(state["data"]["corrects"]))
                if corrected is not None:
                    corrected["corrected_by"] = event_id
            items.append(item)
            by_event_id[event_id] = item
        return items


def _replay(programme: Programme | None, events: Iterable[Any]) -> Programme | None:
    """The library's project_aggregate without its per-event `isinstance` check
    against a runtime Protocol, which cost as much as the replay itself."""
    for event in events:
        programme = event.mutate(programme)
    return programme
