"""Programmes: the application that records and replays programme histories.

Commands arrive as client envelopes (`EventEnvelope`); the application checks
idempotency (rule 6) and `expected_version` (rule 7), runs each envelope as a
command on the `Programme` aggregate (rules 1-5), and saves all resulting
events in one transaction (rule 8). Beside every stored event the store keeps a
ledger entry: the client's event_id, the clinic, the record time, a digest of
the posted content and the event's gap-free global position. The ledger is
what makes idempotent retries, `as_of` queries and positions possible
(domain/ledger.py: the port, and an in-memory ledger).

`Programmes()` with no settings records in memory, as the library's own
example applications do; the service gives it a store's settings
(service/bootstrap.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.popo import POPOFactory

from domain import errors, programme_cache
from domain.ledger import HistorySource, InMemoryLedger, Ledger, LedgerEntry, RecordedEntry
from domain.programme import Programme
from domain.versions import VersionedMapper


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
        self._command_locks = programme_cache.CommandLocks()

    def construct_mapper(self) -> Mapper[UUID]:
        # The library's mapper, refusing events newer than this release (domain/versions.py).
        return self.factory.mapper(transcoder=self.construct_transcoder(),
                                   mapper_class=VersionedMapper)

    def construct_recorder(self) -> ApplicationRecorder:
        # No store configured: the ledger in memory (the library's in-memory
        # factory ignores APPLICATION_RECORDER_TOPIC).
        if isinstance(self.factory, POPOFactory):
            return InMemoryLedger()
        return super().construct_recorder()

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
        with self._command_locks.held(programme_id):
            receipt = self._record_with_retries(clinic_id, programme_id, envelopes,
                                                expected_version)
        for listener in self.receipt_listeners:
            listener(receipt)
        return receipt

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
        # fails it is dropped from the cache (domain/programme_cache.py).
        programme = programme_cache.find(self.repository, programme_id, copy=False)
        try:
            return self._run_and_save(programme, clinic_id, programme_id, envelopes,
                                      expected_version)
        except BaseException:
            programme_cache.drop(self.repository, programme_id)
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
                raise self._not_known_then(clinic_id, programme_id)
            version = known if version is None else min(version, known)
        if version is None:
            # The library fast-forwards a cached programme in place and copies
            # it after releasing its own lock: a command on the same programme
            # in another thread could change it under the copy.
            with self._command_locks.held(programme_id):
                programme = programme_cache.find(self.repository, programme_id)
        else:
            programme = programme_cache.find(self.repository, programme_id, version)
        if programme is None or programme.clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        if version is not None and programme.version != version:
            # Only now, with the clinic checked: a caller may learn what exists
            # of its own programmes, never of another clinic's.
            raise errors.VersionNotRecorded(version, programme.version)
        return programme

    def _not_known_then(self, clinic_id: str, programme_id: UUID) -> errors.ProgrammeNotFound:
        """Why `as_of` finds nothing: a programme recorded later (say when), or none
        in this clinic (say nothing more)."""
        entries = self.ledger.entries_of_programme(programme_id)
        if not entries or entries[0].clinic_id != clinic_id:
            return errors.ProgrammeNotFound("no such programme in this clinic")
        first = min(entries, key=lambda e: e.position)
        return errors.NotYetRecorded(first.recorded_at, max(e.version for e in entries))

    def history(self, clinic_id: str, programme_id: UUID, *,
                ledger: HistorySource | None = None) -> list[dict[str, Any]]:
        """Every event of the programme in version order, with its ledger entry, and
        for a corrected event the correction now in force (read from `ledger`, a
        copy of the application's own such as a replica's, when given)."""
        entries = (ledger or self.ledger).history(programme_id, self.mapper)
        # The ledger says whose programme it is: no need to replay it all.
        if not entries or entries[0].clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        items: list[dict[str, Any]] = []
        by_event_id: dict[str, dict[str, Any]] = {}
        for entry in entries:
            item = {
                "event_id": entry.event_id,
                "type": entry.type,
                "version": entry.version,
                "position": entry.position,
                "occurred_at": entry.occurred_at,
                "recorded_at": entry.recorded_at,
                "recorded_by": entry.recorded_by,
                "data": entry.data,
                "corrected_by": None,
                "schema_version": entry.schema_version,
                "newer_release": entry.newer_release,
            }
            if entry.type == "EntryCorrected" and not entry.newer_release:
                # Corrections follow what they correct: the last one is in force.
                corrected = by_event_id.get(str(entry.data["corrects"]))
                if corrected is not None:
                    corrected["corrected_by"] = entry.event_id
            items.append(item)
            by_event_id[entry.event_id] = item
        return items
