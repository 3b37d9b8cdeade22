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

import dataclasses
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TypeVar
from uuid import UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.popo import POPOFactory

from domain import errors, personal, programme_aliases, programme_cache
from domain.ledger import HistorySource, InMemoryLedger, Ledger, LedgerEntry, RecordedEntry, Save
from domain.programme import Programme, event_id_text
from domain.recent_receipts import RecentReceipts
from domain.uuid_texts import UuidTexts
from domain.versions import VersionedMapper

Result = TypeVar("Result")


def utc_now() -> datetime:
    """The server's clock (rule 4 measures occurred_at against it)."""
    return datetime.now(UTC)


#: Namespace of the ids of erasure events: one per programme, the same every time.
ERASURE_NAMESPACE = UUID("0d3f6c1e-8a57-4b7e-9d0c-6f2a9e4b1c75")


def erasure_event_id(programme_id: UUID) -> UUID:
    """The event_id of a programme's erasure (a repeated erasure finds it)."""
    return uuid5(ERASURE_NAMESPACE, str(programme_id))


#: How many times a command is re-run after losing a race with another writer
#: (only without expected_version; with it, the re-run reports the mismatch).
CONCURRENT_WRITE_ATTEMPTS = 5


#: What json.dumps(sort_keys=True, separators=(",", ":")) makes, without a new
#: encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

#: The C encoder `_CANONICAL.encode` builds on every call, built once: the same
#: output for anything a client can post (parsed JSON is never circular, the one
#: thing it does not check), without the Python set-up around each call, which
#: cost more than the encoding itself.
_encode_canonical: Callable[[Any], str] = _CANONICAL.encode
if c_make_encoder is not None:
    _c_canonical = c_make_encoder(None, _CANONICAL.default, encode_basestring_ascii, None,
                                  ":", ",", True, False, True)

    def _encode_canonical(value: Any) -> str:
        return "".join(_c_canonical(value, 0))


#: Programmes' ids as text: written out for every post to a programme (its content
#: digests, its receipt).
programme_text = UuidTexts(kept=20_000).text


@dataclass(slots=True)
class EventEnvelope:
    """One event as a clinic system posted it (already validated)."""

    event_id: UUID
    type: str
    occurred_at: datetime
    recorded_by: str
    data: dict[str, Any]

    def content_digest(self, programme_id: UUID | str) -> str:
        """A digest of everything that makes this event what it is, for rule 6: the
        sha256 of `_CANONICAL.encode` of {programme_id, type, occurred_at (UTC),
        recorded_by, data}, written out key by key in that encoding's sorted order
        (tests/domain/test_content_digest.py holds the two to each other).
        `programme_id` may be given as its str, made once for several envelopes."""
        canonical = ('{"data":' + _encode_canonical(self.data)
                     + ',"occurred_at":'
                     + encode_basestring_ascii(self.occurred_at.astimezone(UTC).isoformat())
                     + ',"programme_id":"' + str(programme_id)
                     + '","recorded_by":' + encode_basestring_ascii(self.recorded_by)
                     + ',"type":' + encode_basestring_ascii(self.type) + "}")
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class Receipt:
    """The outcome of a post: what was recorded, or what had been recorded before."""

    programme_id: UUID
    clinic_id: str
    version: int
    recorded: list[dict[str, Any]]
    replayed: bool  # True when every event had been recorded before (nothing new)

    def body(self) -> dict[str, Any]:
        return {
            "programme_id": programme_text(self.programme_id),
            "clinic_id": self.clinic_id,
            "version": self.version,
            "recorded": self.recorded,
        }


@dataclass(slots=True)
class Post:
    """One post to one programme, as `Programmes.record_events` takes it."""

    programme_id: UUID
    envelopes: Sequence[EventEnvelope]
    expected_version: int | None = None


#: What `Programmes.record_posts` answers for each post: its receipt, or why not.
Answer = Receipt | errors.DomainRuleViolation | errors.ApplicationError


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


class _TakenMeanwhile(Exception):
    """Another clinic started a programme under this stored id after it was resolved:
    resolve the clinic's programme_id again (it now has an alias)."""


#: A post run by `Programmes._run_posts`: its index, its programme, the events it
#: recorded, the version it leaves the programme at, and their save. (A tuple:
#: bulk ingest makes one per line.)
_RanPost = tuple[int, Programme, list[Any], int, Save]


class Programmes(Application[UUID]):
    """Records lumbar traction programmes and replays their histories."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        seal: personal.Seal | None = None,
    ) -> None:
        #: Seals patients' personal fields before they are stored (the store's keyring);
        #: None in memory, where nothing is stored.
        self.seal = seal
        super().__init__(env)
        self.clock = clock
        #: Called with every receipt handed out (recorded or replayed), e.g. to count them.
        self.receipt_listeners: list[Callable[[Receipt], None]] = []
        self._command_locks = programme_cache.CommandLocks()
        #: The clinics whose last bulk chunk in this process held only new events
        #: (Programmes._recorded_before): a hint for the next, never a guarantee.
        #: One entry per clinic at most (clinics are registered, so few).
        self._only_new: set[str] = set()
        self._checkpoints = programme_cache.Checkpoints()
        self._owners = programme_cache.Owners()
        #: Receipts of the single posts this process recorded last: exact retries
        #: are answered from them (domain/recent_receipts.py).
        self._recent_receipts = RecentReceipts()
        #: (clinic, programme_id) -> stored id, for the clinic's own aliased programmes.
        self._stored_ids: programme_aliases.Remembered[tuple[str, UUID], UUID] = (
            programme_aliases.Remembered())
        #: stored id -> the clinic's programme_id (None: not an alias), for version-5 ids.
        self._clinic_programme_ids: programme_aliases.Remembered[UUID, UUID | None] = (
            programme_aliases.Remembered())

    def construct_mapper(self) -> Mapper[UUID]:
        # The library's mapper, refusing events newer than this release (domain/versions.py).
        mapper = self.factory.mapper(transcoder=self.construct_transcoder(),
                                     mapper_class=VersionedMapper)
        mapper.seal = self.seal
        return mapper

    def construct_recorder(self) -> ApplicationRecorder:
        # No store configured: the ledger in memory (the library's in-memory
        # factory ignores APPLICATION_RECORDER_TOPIC).
        if isinstance(self.factory, POPOFactory):
            return InMemoryLedger()
        return super().construct_recorder()

    @property
    def ledger(self) -> Ledger:
        return self.recorder  # type: ignore[return-value]

    # ---- tenancy --------------------------------------------------------

    def owners(self, clinic_id: str, programme_ids: Collection[UUID]) -> dict[UUID, str]:
        """The clinic of each of these programmes that has events, checked before any
        of them is loaded: a programme of another clinic must cost what a missing one
        costs, on every path (loading it first would tell its length by the time taken)."""
        known, unknown = self._owners.partition(clinic_id, programme_ids)
        found = dict.fromkeys(known, clinic_id)
        if unknown:
            stored = self.ledger.owners(unknown)
            self._owners.remember(stored)
            found.update(stored)
        return found

    def require_own(self, clinic_id: str, programme_id: UUID) -> UUID:
        """The stored id of the clinic's programme `programme_id` (domain/programme_aliases.py);
        ProgrammeNotFound unless it has events: the same answer, after the same one
        lookup, for an id only another clinic uses and for none."""
        stored_id, owner = self._resolve(clinic_id, [programme_id])[programme_id.int]
        if owner != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        return stored_id

    def stored_ids(self, clinic_id: str, programme_ids: Collection[UUID]) -> dict[UUID, UUID]:
        """Where each of the clinic's programmes is (or would be) stored. A programme
        started under an alias records it with its first event (`LedgerEntry.alias_of`)."""
        resolved = self._resolve(clinic_id, programme_ids)
        return {programme_id: resolved[programme_id.int][0] for programme_id in programme_ids}

    def _resolve(self, clinic_id: str, programme_ids: Iterable[UUID]
                 ) -> dict[int, tuple[UUID, str | None]]:
        """(stored id, its clinic or None) of each of the clinic's programme ids (by the
        id's int, which hashes in C: bulk ingest resolves a thousand at a time): the
        id itself unless another clinic holds it, then its alias. One index lookup
        (the id and its alias together) for any id not known to be the clinic's,
        whoever holds it; none for one known."""
        owned, others = self._owners.partition(clinic_id, programme_ids)
        resolved: dict[int, tuple[UUID, str | None]] = {
            programme_id.int: (programme_id, clinic_id) for programme_id in owned}
        chains: dict[UUID, UUID] = {}
        for programme_id in others:
            known = self._stored_ids.get((clinic_id, programme_id), None)
            if isinstance(known, UUID) and self._owners.is_owner(clinic_id, known):
                resolved[programme_id.int] = (known, clinic_id)
            else:
                chains[programme_id] = programme_id
        for _ in range(programme_aliases.ALIAS_DEPTH):
            if not chains:
                break
            aliases = {programme_id: programme_aliases.aliased_id(clinic_id, candidate)
                       for programme_id, candidate in chains.items()}
            held = self.ledger.owners({*chains.values(), *aliases.values()})
            self._owners.remember(held)
            following: dict[UUID, UUID] = {}
            for programme_id, candidate in chains.items():
                for stored_id in (candidate, aliases[programme_id]):
                    owner = held.get(stored_id)
                    if owner in (None, clinic_id):
                        resolved[programme_id.int] = (stored_id, owner)
                        if stored_id != programme_id and owner == clinic_id:
                            self._stored_ids.put((clinic_id, programme_id), stored_id)
                        break
                else:
                    following[programme_id] = programme_aliases.aliased_id(
                        clinic_id, aliases[programme_id])
            chains = following
        for programme_id in chains:  # not one free id in ALIAS_DEPTH rounds: none to be had
            resolved[programme_id.int] = (
                programme_aliases.aliased_id(clinic_id, chains[programme_id]), None)
        return resolved

    def clinic_programme_ids(self, stored_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        """The clinic's own programme_id of each of these stored ids (of programmes
        with events) that is an alias; every other stored id is its programme's
        programme_id. Only version-5 ids are looked up, each once per process (what
        an id is never changes: its alias is recorded with its first event)."""
        found: dict[UUID, UUID] = {}
        unknown: list[UUID] = []
        for stored_id in stored_ids:
            if not programme_aliases.is_candidate(stored_id):
                continue
            known = self._clinic_programme_ids.get(stored_id)
            if known is programme_aliases.MISSING:
                unknown.append(stored_id)
            elif isinstance(known, UUID):
                found[stored_id] = known
        if unknown:
            aliases = self.ledger.aliases(unknown)
            for stored_id in unknown:
                self._clinic_programme_ids.put(stored_id, aliases.get(stored_id))
            found.update(aliases)
        return found

    def clinic_programme_id(self, stored_id: UUID) -> UUID:
        """The programme_id its clinic uses for the programme stored as `stored_id`."""
        return self.clinic_programme_ids([stored_id]).get(stored_id, stored_id)

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

        `programme_id` is the clinic's own; the programme is stored under the id
        it resolves to (domain/programme_aliases.py), again should another clinic
        start a programme with the same id between resolving and saving.
        """
        for _ in range(CONCURRENT_WRITE_ATTEMPTS):
            stored_id = self.stored_ids(clinic_id, [programme_id])[programme_id]
            try:
                with self._command_locks.held(stored_id):
                    receipt = self._record_with_retries(
                        clinic_id, stored_id, envelopes, expected_version,
                        alias_of=programme_id if stored_id != programme_id else None)
                break
            except _TakenMeanwhile:
                continue
        else:
            raise errors.ConcurrentWrite(
                "other writers kept saving to this programme at the same moment; retry")
        if receipt.programme_id != programme_id:
            receipt = dataclasses.replace(receipt, programme_id=programme_id)
        for listener in self.receipt_listeners:
            listener(receipt)
        return receipt

    def record_posts(self, clinic_id: str, posts: Sequence[Post]) -> list[Answer]:
        """Record independent posts to the clinic's programmes (bulk ingest): each
        answered as `record_events` would answer it, alone, in order; the new
        ones written in one transaction.

        The posts run as commands on the programmes held in memory (each
        programme's posts in order, on top of each other), and their saves are
        written together; the store refuses, one by one, the saves another
        writer overtook (domain.ledger.screen). A post that repeats event ids
        recorded before or earlier in `posts`, or whose save was refused, is
        then recorded exactly as `record_events` records it (so a repeat is
        answered with its original receipt), after the others, and so are the
        later posts of its programme.
        """
        answers: list[Answer | None] = [None] * len(posts)
        later: list[int] = []
        recorded = self._recorded_before(clinic_id, posts)
        # Run and saved under their stored ids; answered with the clinic's own.
        # (Keyed by the ids' ints, which hash in C: a UUID hashes in Python.)
        distinct = {post.programme_id.int: post.programme_id for post in posts}
        resolved = self._resolve(clinic_id, distinct.values())
        programme_ids = [stored_id for stored_id, _ in resolved.values()]
        aliases = {resolved[key][0]: programme_id for key, programme_id in distinct.items()
                   if resolved[key][0].int != key}
        runs = posts if not aliases else [
            post if resolved[post.programme_id.int][0].int == post.programme_id.int
            else dataclasses.replace(post, programme_id=resolved[post.programme_id.int][0])
            for post in posts]
        # A programme resolved as the clinic's stays the clinic's (a programme never
        # changes clinic); only the others are asked again, under their locks.
        unsure = [stored_id for stored_id, owner in resolved.values() if owner != clinic_id]
        # In one order, so that two bulk posts never wait for each other.
        with self._command_locks.held_all(programme_ids):
            try:
                saves = self._run_posts(clinic_id, runs, programme_ids, unsure, recorded, answers,
                                        later, aliases)
                outcomes = self.ledger.record_saves([save for *_, save in saves]) if saves else []
            except BaseException:
                for programme_id in programme_ids:
                    programme_cache.drop(self.repository, programme_id)
                raise
            refused: set[UUID] = set()
            for (index, programme, events, version, _), outcome in zip(saves, outcomes,
                                                                       strict=True):
                if isinstance(outcome, IntegrityError) or (
                        refused and runs[index].programme_id in refused):
                    # Its events are in memory only: read the programme again.
                    refused.add(runs[index].programme_id)
                    programme_cache.drop(self.repository, runs[index].programme_id)
                    later.append(index)
                    continue
                answers[index] = Receipt(
                    posts[index].programme_id, clinic_id, version,
                    [{"event_id": event_id_text(event.event_id), "type": type(event).__name__,
                      "version": event.originator_version, "position": position}
                     for event, position in zip(events, outcome, strict=True)],
                    False)
                if events[0].originator_version == 1:
                    # Started by this post: every other programme run is in the
                    # cache already (Programmes._programmes_now).
                    programme_cache.keep(self.repository, programme)
        if recorded or later or any(
                isinstance(answer, errors.EventIdConflict)
                or (isinstance(answer, Receipt) and answer.replayed) for answer in answers):
            self._only_new.discard(clinic_id)
        else:
            self._only_new.add(clinic_id)
        if aliases:
            for index, answer in enumerate(answers):
                # A repeat's receipt is read back from the ledger, under the stored id.
                if isinstance(answer, Receipt) and (
                        answer.programme_id != posts[index].programme_id):
                    answers[index] = dataclasses.replace(
                        answer, programme_id=posts[index].programme_id)
        for listener in self.receipt_listeners:
            for answer in answers:
                if isinstance(answer, Receipt):
                    listener(answer)
        for index in sorted(later):
            post = posts[index]
            try:
                answers[index] = self.record_events(clinic_id, post.programme_id,
                                                    post.envelopes, post.expected_version)
            except (errors.DomainRuleViolation, errors.ApplicationError) as refusal:
                answers[index] = refusal
        return answers  # type: ignore[return-value]

    def _recorded_before(self, clinic_id: str, posts: Sequence[Post]) -> set[int]:
        """The posts' event ids (as ints) the ledger holds already for the clinic, so
        that a retried upload's lines go straight to `record_events`, which answers
        them with their original receipts.

        Only a look-up, never the guarantee: the store's screen refuses, inside the
        write transaction, every save with an event id recorded before
        (domain.ledger.screen), and `record_posts` answers those as it answers
        these. So when the clinic's last chunk in this process held no event
        recorded before (an upload of new events), the next is not looked up: a
        retry that comes after one is still answered right, its first chunk by
        way of the screen (commands run in vain, then `record_events` per line),
        and its later chunks are looked up again."""
        if clinic_id in self._only_new:
            return set()
        return {entry.event_id.int for entry in self.ledger.entries_by_event_id(
            clinic_id, [envelope.event_id for post in posts for envelope in post.envelopes])}

    def erase(self, clinic_id: str, programme_id: UUID, erased_by: str,
              reason: str) -> Receipt:
        """Erase the personal data of a programme: record its ProgrammeErased event
        (who, when, why: nothing personal), then destroy its data key. A repeated
        erasure answers the first one's receipt (and destroys the key again, should
        a crash have come between the two)."""
        clinics_id = programme_id
        # Before loading it, as every path does.
        programme_id = self.require_own(clinic_id, programme_id)
        with self._command_locks.held(programme_id):
            for attempt in range(CONCURRENT_WRITE_ATTEMPTS):
                try:
                    receipt = dataclasses.replace(
                        self._erase(clinic_id, programme_id, erased_by, reason),
                        programme_id=clinics_id)
                    break
                except IntegrityError:
                    # Another host saved to this programme first: erase it as it is now.
                    if attempt == CONCURRENT_WRITE_ATTEMPTS - 1:
                        raise errors.ConcurrentWrite(
                            "other writers kept saving to this programme; retry") from None
            # Every checkpoint of it held personal fields in the clear.
            self._checkpoints.forget(programme_id)
        if self.seal is not None:
            self.seal.forget(programme_id)
        return receipt

    def _erase(self, clinic_id: str, programme_id: UUID, erased_by: str, reason: str
               ) -> Receipt:
        erasure_id = erasure_event_id(programme_id)
        programme = programme_cache.find(self.repository, programme_id, copy=False)
        if programme is None or programme.clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        if programme.erased_at is not None:
            return receipt_from_entries(self.ledger.entries_by_event_id(clinic_id, [erasure_id]),
                                        replayed=True)
        try:
            programme.erase(erasure_id, self.clock(), erased_by, reason)
            events = programme.collect_events()
            positions = self.recorder.insert_events(
                [self.mapper.to_stored_event(event) for event in events],
                ledger=[LedgerEntry(event_id=erasure_id, clinic_id=clinic_id,
                                    event_type=personal.ERASURE_TYPE, content_digest=None)])
        except BaseException:
            programme_cache.drop(self.repository, programme_id)
            raise
        assert positions is not None
        return Receipt(programme_id=programme_id, clinic_id=clinic_id,
                       version=programme.version,
                       recorded=[{"event_id": str(erasure_id), "type": personal.ERASURE_TYPE,
                                  "version": programme.version, "position": positions[0]}],
                       replayed=False)

    def is_erased(self, programme_id: UUID) -> bool:
        """Whether the programme's personal data has been erased (its erasure event is
        in the ledger: one lookup by event id; a clinic may use that id for an event
        of another programme of its own, so the programme is checked too)."""
        return any(entry.programme_id == programme_id for entry in self.ledger.entries_by_event_id(
            None, [erasure_event_id(programme_id)]))

    def _run_posts(self, clinic_id: str, posts: Sequence[Post], programme_ids: Sequence[UUID],
                   unsure: Sequence[UUID], recorded: set[int], answers: list[Answer | None],
                   later: list[int], aliases: dict[UUID, UUID]
                   ) -> list[_RanPost]:
        """Run each post's commands (record_posts holds the locks of `programme_ids`,
        every programme the posts go to); the saves to write, refusals in `answers`,
        the posts left for later. `unsure`: those of `programme_ids` not the clinic's
        when they were resolved (all others are); `recorded`: event ids (ints)
        recorded before."""
        owners = self.owners(clinic_id, unsure) if unsure else {}
        # Another clinic's only if it started it since the ids were resolved:
        # left for later, when record_events resolves them again.
        foreign = {programme_id.int for programme_id, owner in owners.items()
                   if owner != clinic_id}
        unsure_ints = {programme_id.int for programme_id in unsure}
        programmes = self._programmes_now(
            [programme_id for programme_id in programme_ids
             if programme_id.int not in unsure_ints or owners.get(programme_id) == clinic_id])
        waiting: set[UUID] = set()  # programmes with a post left for later
        seen: set[int] = set()  # event ids (ints: they hash in C) of the posts run
        ran: list[tuple[int, Programme, list[Any], int]] = []
        now = self.clock()
        for index, post in enumerate(posts):
            programme_id = post.programme_id
            event_ids = [envelope.event_id.int for envelope in post.envelopes]
            if ((waiting and programme_id in waiting) or (foreign and programme_id.int in foreign)
                    or not recorded.isdisjoint(event_ids) or not seen.isdisjoint(event_ids)):
                waiting.add(programme_id)
                later.append(index)
                continue
            seen.update(event_ids)
            try:
                programme = self._run(programmes.get(programme_id.int), clinic_id, programme_id,
                                      post.envelopes, post.expected_version, now)
            except (errors.DomainRuleViolation, errors.ApplicationError) as refusal:
                try:
                    answers[index] = self._earlier_post(clinic_id, programme_id,
                                                        post.envelopes) or refusal
                except errors.EventIdConflict as conflict:
                    answers[index] = conflict
                if len(post.envelopes) > 1:
                    # The commands before the refused one changed the programme.
                    programme_cache.drop(self.repository, programme_id)
                    waiting.add(programme_id)
                continue
            programmes[programme_id.int] = programme
            ran.append((index, programme, programme.collect_events(), programme.version))
        mapper = self.mapper
        if isinstance(mapper, VersionedMapper):
            mapper.register_patients([event for _, _, events, _ in ran for event in events])
        return [(index, programme, events, version, Save(
            [mapper.to_stored_event(event) for event in events],
            self._ledger_entries(clinic_id, posts[index].programme_id, posts[index].envelopes,
                                 events, aliases.get(posts[index].programme_id) if aliases
                                 else None)))
            for index, programme, events, version in ran]

    def _programmes_now(self, programme_ids: Sequence[UUID]) -> dict[int, Programme | None]:
        """The programmes as they are now (None: no events), by their ids' ints, from
        this process's cache brought up to date with one query for all of them
        (their command locks held)."""
        cache = self.repository.cache
        programmes: dict[int, Programme | None] = {}
        versions: dict[UUID, int] = {}
        for programme_id in programme_ids:
            programme = None
            if cache is not None:
                try:
                    programme = cache.get(programme_id)
                except KeyError:
                    pass
            programmes[programme_id.int] = programme
            versions[programme_id] = programme.version if programme is not None else 0
        for programme_id, stored_events in self.ledger.events_after(versions).items():
            if not stored_events:
                continue
            cached = programmes[programme_id.int]
            programme = programme_cache.replay(
                cached, [self.mapper.to_domain_event(stored) for stored in stored_events])
            if programme is not None and cached is None:
                programme_cache.keep(self.repository, programme)
            programmes[programme_id.int] = programme
        return programmes

    def _record_with_retries(
        self,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
        *,
        alias_of: UUID | None = None,
    ) -> Receipt:
        # A retry of a post this process recorded: its receipt, with no statement.
        # (Under the programme's command lock: a retry that came while the original
        # was being saved finds its receipt here once the original is committed.)
        replayed = self._recent_receipts.replay(
            clinic_id, programme_id, envelopes,
            lambda envelope: envelope.content_digest(programme_text(programme_id)))
        if replayed is not None:
            return replayed
        for attempt in range(CONCURRENT_WRITE_ATTEMPTS):
            try:
                return self._record_new(clinic_id, programme_id, envelopes, expected_version,
                                        alias_of)
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
        """Rule 6: the receipt of an identical earlier post of this clinic, None if
        all are new (event ids are the clinic's own: another clinic's are never
        looked at, so they tell nothing)."""
        found = {
            e.event_id: e
            for e in self.ledger.entries_by_event_id(clinic_id,
                                                     [env.event_id for env in envelopes])
        }
        if not found:
            return None
        differing = [
            str(env.event_id)
            for env in envelopes
            if env.event_id in found
            and found[env.event_id].content_digest != env.content_digest(programme_id)
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
        return receipt_from_entries(self._same_saves(programme_id, list(found.values())),
                                    replayed=True)

    def _same_saves(self, programme_id: UUID, found: Sequence[RecordedEntry]
                    ) -> list[RecordedEntry]:
        """The entries of the saves that recorded `found`, read from a window of the
        programme's versions, so that a retry costs what its saves hold, not the
        programme's length. A save's versions are consecutive and all carry its
        saved_version: the window ends at the last save's last version and starts
        below the first found version, going further back (twice as far each
        time) until its first entry is of an earlier save, or it reaches version 1."""
        saved_versions = {e.saved_version for e in found}
        last, lowest = max(saved_versions), min(e.version for e in found)
        reach = len(found)
        while True:
            first = max(1, lowest - reach)
            window = self.ledger.entries_of_programme(programme_id, (first, last))
            earliest = min(window, key=lambda e: e.version)
            if first == 1 or earliest.saved_version not in saved_versions:
                return [e for e in window if e.saved_version in saved_versions]
            reach *= 2

    def _record_new(
        self,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
        alias_of: UUID | None = None,
    ) -> Receipt:
        # The cached programme itself, not a copy: the command lock keeps every
        # other thread of this process away from it, and if anything below
        # fails it is dropped from the cache (domain/programme_cache.py).
        # Whose it is first: another clinic's programme is never loaded. It was
        # resolved to one of this clinic's or none, so another clinic holds it only
        # if it started it since (or while a save of ours failed): resolve again.
        owner = self.owners(clinic_id, [programme_id]).get(programme_id)
        if owner not in (None, clinic_id):
            raise _TakenMeanwhile(programme_id)
        programme = None
        if owner == clinic_id:
            # The cached programme (or none) brought up to date, and whether this
            # post is a retry, in one read (a retry repeats every event id: the
            # first tells). A retry is answered at once: its commands are not run,
            # so the cached programme is kept (a refused save drops it, and the
            # next post would read all of the programme's events again). A post
            # that repeats only some ids is refused by the store's screen, and
            # answered as before.
            cached = programme_cache.cached(self.repository, programme_id)
            stored, repeated = self.ledger.events_since(
                programme_id, cached.version if cached is not None else 0, clinic_id,
                envelopes[0].event_id)
            programme = programme_cache.replay(
                cached, [self.mapper.to_domain_event(event) for event in stored])
            if cached is None and programme is not None:
                programme_cache.keep(self.repository, programme)  # read whole: held from now on
            earlier = self._earlier_post(clinic_id, programme_id, envelopes) if repeated else None
            if earlier is not None:
                return earlier
        try:
            return self._run_and_save(programme, clinic_id, programme_id, envelopes,
                                      expected_version, alias_of)
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
        alias_of: UUID | None = None,
    ) -> Receipt:
        programme = self._run(programme, clinic_id, programme_id, envelopes, expected_version,
                              self.clock())
        events = programme.collect_events()
        # Straight to the recorder, as Application.save would (no snapshots, no
        # followers to notify here), without its per-object runtime Protocol checks.
        entries = self._ledger_entries(clinic_id, programme_id, envelopes, events, alias_of)
        positions = self.recorder.insert_events(
            [self.mapper.to_stored_event(event) for event in events], ledger=entries)
        assert positions is not None
        receipt = Receipt(
            programme_id=programme_id,
            clinic_id=clinic_id,
            version=programme.version,
            recorded=[{"event_id": event_id_text(event.event_id),
                       "type": type(event).__name__,
                       "version": event.originator_version, "position": position}
                      for event, position in zip(events, positions, strict=True)],
            replayed=False,
        )
        self._recent_receipts.keep(clinic_id, programme_id, entries, receipt)
        return receipt

    def _run(
        self,
        programme: Programme | None,
        clinic_id: str,
        programme_id: UUID,
        envelopes: Sequence[EventEnvelope],
        expected_version: int | None,
        now: datetime,
    ) -> Programme:
        """Run the envelopes as commands (rules 1-5, 7): the programme with their
        events pending. A refused command has changed nothing; the commands
        before it in the same post have.

        `programme_id` is a stored id the clinic's own programme_id resolved to
        (domain/programme_aliases.py): the clinic's programme, or none yet."""
        if programme is not None and programme.clinic_id != clinic_id:
            raise _TakenMeanwhile(programme_id)
        actual = programme.version if programme is not None else 0
        if expected_version is not None and expected_version != actual:
            raise errors.VersionConflict(expected_version, actual)
        if programme is None and envelopes[0].type != "ProgrammeStarted":
            raise errors.ProgrammeNotFound(
                "no such programme in this clinic; a new programme's first event "
                "must be ProgrammeStarted"
            )
        for index, envelope in enumerate(envelopes):
            try:
                programme = self._apply(programme, clinic_id, programme_id, envelope, now)
            except errors.DomainRuleViolation as violation:
                violation.event_index = index
                violation.event_id = str(envelope.event_id)
                raise
        assert programme is not None
        return programme

    @staticmethod
    def _ledger_entries(clinic_id: str, programme_id: UUID, envelopes: Sequence[EventEnvelope],
                        pending: Sequence[Any], alias_of: UUID | None = None
                        ) -> list[LedgerEntry]:
        """The ledger entries of the pending events; with `alias_of` (the clinic's
        programme_id of a programme stored under an alias), the first event's
        carries it, so the store records the alias in the same transaction."""
        stored_id = programme_text(programme_id)
        digests = {env.event_id.int: env.content_digest(stored_id) for env in envelopes}
        return [
            LedgerEntry(event.event_id, clinic_id, type(event).__name__,
                        digests.get(event.event_id.int),
                        alias_of if event.originator_version == 1 else None)
            for event in pending
        ]

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
        programme_id = self.require_own(clinic_id, programme_id)
        if as_of is not None:
            known = self.version_as_of(clinic_id, programme_id, as_of)
            version = known if version is None else min(version, known)
        if version is None:
            # The library fast-forwards a cached programme in place and copies
            # it after releasing its own lock: a command on the same programme
            # in another thread could change it under the copy.
            with self._command_locks.held(programme_id):
                programme = programme_cache.find(self.repository, programme_id)
        else:
            # From the nearest checkpoint: at most CHECKPOINT_EVERY - 1 events.
            programme = self._checkpoints.replay(self.repository, programme_id, version)
        if programme is None or programme.clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        if version is not None and programme.erased_at is None and self.is_erased(
                programme_id):
            programme.conceal_personal()  # a copy: replays start from copies
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

    def version_as_of(self, clinic_id: str, programme_id: UUID, as_of: datetime) -> int:
        """The programme's version as the service knew it at record time `as_of`."""
        programme_id = self.require_own(clinic_id, programme_id)
        known = self.ledger.version_as_of(programme_id, as_of)
        if known is None:
            raise self._not_known_then(clinic_id, programme_id)
        return known

    def _personal_fields(self, programme_id: UUID, entry: Any, erased: bool
                         ) -> dict[str, Any]:
        """A history entry's data with its personal fields opened, or erased."""
        if entry.newer_release:
            return entry.data  # shown as stored
        if erased:
            return personal.erased(entry.type, entry.data)
        if self.seal is None:
            return entry.data
        return personal.opened(self.seal, programme_id, UUID(entry.event_id), entry.type,
                               entry.data)

    def with_current(self, clinic_id: str, programme_id: UUID,
                     use: Callable[[Programme], Result]) -> Result:
        """`use(programme)` with the programme as it is now, under its command lock,
        without copying it (`use` must not change it)."""
        programme_id = self.require_own(clinic_id, programme_id)
        with self._command_locks.held(programme_id):
            programme = programme_cache.find(self.repository, programme_id, copy=False)
            if programme is None or programme.clinic_id != clinic_id:
                raise errors.ProgrammeNotFound("no such programme in this clinic")
            return use(programme)

    def history(self, clinic_id: str, programme_id: UUID, version: int | None = None, *,
                ledger: HistorySource | None = None,
                clinic_positions: bool = False) -> list[dict[str, Any]]:
        """Every event of the programme in version order, with its ledger entry, and
        for a corrected event the correction now in force; or, with `version`, as
        the history stood after that version (the corrections in force then). Read
        from `ledger`, a copy of the application's own such as a replica's, when given.
        With `clinic_positions`, each event's position is its number among its
        clinic's events, as a clinic is shown positions (SECURITY.md)."""
        programme_id = self.require_own(clinic_id, programme_id)
        entries = (ledger or self.ledger).history(programme_id, self.mapper)
        # The ledger says whose programme it is: no need to replay it all.
        if not entries or entries[0].clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        # An erasure reaches back over the whole history, at every version.
        erased = any(entry.type == personal.ERASURE_TYPE for entry in entries)
        if version is not None:
            if entries[-1].version < version:
                raise errors.VersionNotRecorded(version, entries[-1].version)
            entries = [entry for entry in entries if entry.version <= version]
        items: list[dict[str, Any]] = []
        by_event_id: dict[str, dict[str, Any]] = {}
        for entry in entries:
            item = {
                "event_id": entry.event_id,
                "type": entry.type,
                "version": entry.version,
                "position": entry.clinic_position if clinic_positions else entry.position,
                "occurred_at": entry.occurred_at,
                "recorded_at": entry.recorded_at,
                "recorded_by": entry.recorded_by,
                "data": self._personal_fields(programme_id, entry, erased),
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
