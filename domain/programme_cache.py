"""Programmes held in this process's memory between commands and replays.

The library's repository keeps recently used programmes in a cache and
fast-forwards them from the store (the store stays the truth). Two things
here are ours, both for speed, both safe only together:

- commands run on the cached programme itself, not on a deep copy (copying
  it cost a fifth of a single-event post), so one command at a time per
  programme in this process: `CommandLocks`;
- a programme that a failed command may have changed (events applied but
  never saved) is dropped from the cache.

Other processes still race; the store refuses the loser of a race.

Replays to an earlier version (`?version=`, `?as_of=`) start from the nearest
`Checkpoints`: programmes as they stood at every CHECKPOINT_EVERY-th version,
which never change once recorded, kept in memory as replays pass them. A
replay reads and applies at most CHECKPOINT_EVERY - 1 events once its
programme has been replayed that far in this process.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

from domain.programme import Programme


class CommandLocks:
    """One command at a time per programme in this process.

    Two threads running commands on one programme at once would both start
    from the same version, and one would fail at the store and run again;
    worse, inside a group commit (service/storage/group_commit.py) it would
    fail the whole group. Locks exist only while in use.
    """

    def __init__(self) -> None:
        # Keyed by the ids' ints: a UUID hashes in Python, an int in C (bulk
        # ingest takes a thousand of these locks per chunk).
        self._locks: dict[int, list[Any]] = {}  # [lock, users]
        self._guard = threading.Lock()

    @contextmanager
    def held(self, programme_id: UUID) -> Iterator[None]:
        with self.held_all((programme_id,)):
            yield

    @contextmanager
    def held_all(self, programme_ids: Iterable[UUID]) -> Iterator[None]:
        """The locks of all these programmes, taken one by one in one order (by
        id), so that two callers each holding several never wait for each other."""
        keys = sorted({programme_id.int for programme_id in programme_ids})
        locks: list[threading.Lock] = []
        with self._guard:
            for key in keys:
                entry = self._locks.get(key)
                if entry is None:
                    entry = self._locks[key] = [threading.Lock(), 0]
                entry[1] += 1
                locks.append(entry[0])
        taken = 0
        try:
            for lock in locks:
                lock.acquire()
                taken += 1
            yield
        finally:
            for lock in locks[:taken]:
                lock.release()
            with self._guard:
                for key in keys:
                    entry = self._locks[key]
                    if entry[1] == 1:
                        del self._locks[key]
                    else:
                        entry[1] -= 1


def find(repository: Repository[UUID], programme_id: UUID, version: int | None = None, *,
         copy: bool = True) -> Programme | None:
    """The programme (None if it has no events); `copy=False` only under its command lock."""
    if not copy and version is None and repository.cache is not None:
        try:
            cached: Programme = repository.cache.get(programme_id)
        except KeyError:
            pass
        else:
            # Fast-forwarded as the library would, without its fast-forward lock:
            # the command lock, held by the caller, keeps every other thread of
            # this process away from this programme already.
            return replay(cached, repository.event_store.get(programme_id,
                                                             gt=cached.version))
    try:
        programme: Programme = repository.get(programme_id, version=version,
                                              projector_func=replay,
                                              deepcopy_from_cache=copy)
        return programme
    except AggregateNotFoundError:
        return None


def cached(repository: Repository[UUID], programme_id: UUID) -> Programme | None:
    """The programme held in the cache as it is (not brought up to date: the
    caller reads what was stored since), None if it is not held; only under its
    command lock."""
    if repository.cache is None:
        return None
    try:
        programme: Programme = repository.cache.get(programme_id)
    except KeyError:
        return None
    return programme


def drop(repository: Repository[UUID], programme_id: UUID) -> None:
    """Forget the cached programme (it may hold events that were never saved)."""
    if repository.cache is not None:
        try:
            repository.cache.get(programme_id, evict=True)
        except KeyError:
            pass


def keep(repository: Repository[UUID], programme: Programme) -> None:
    """Hold a programme whose events are all saved (a new one, say) in the cache."""
    if repository.cache is not None:
        repository.cache.put(programme.id, programme)


def replay(programme: Programme | None, events: Iterable[Any]) -> Programme | None:
    """The library's project_aggregate without its per-event `isinstance` check
    against a runtime Protocol, which cost as much as the replay itself."""
    for event in events:
        programme = event.mutate(programme)
    return programme


#: A replay keeps the programme as it stood at every this many versions.
CHECKPOINT_EVERY = 50
#: How many such states a process keeps (least recently used first out).
CHECKPOINTS_KEPT = 200


class Checkpoints:
    """Programmes as they stood at versions CHECKPOINT_EVERY, 2 x CHECKPOINT_EVERY,
    ...: immutable once recorded, so shared by every replay in this process.
    A state in here is never changed: a replay continues from a copy."""

    def __init__(self, every: int = CHECKPOINT_EVERY, kept: int = CHECKPOINTS_KEPT) -> None:
        self.every = every
        self.kept = kept
        self._states: OrderedDict[tuple[UUID, int], Programme] = OrderedDict()
        self._lock = threading.Lock()

    def nearest(self, programme_id: UUID, version: int) -> Programme | None:
        """The latest state kept at or before `version` (None: none kept)."""
        with self._lock:
            for at in range(version - version % self.every, 0, -self.every):
                state = self._states.get((programme_id, at))
                if state is not None:
                    self._states.move_to_end((programme_id, at))
                    return state
        return None

    def keep(self, programme: Programme) -> None:
        """Keep a copy of the programme, if its version is one to keep."""
        if programme.version % self.every:
            return
        key = (programme.id, programme.version)
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return
        state = copy.deepcopy(programme)
        with self._lock:
            self._states[key] = state
            while len(self._states) > self.kept:
                self._states.popitem(last=False)

    def forget(self, programme_id: UUID) -> None:
        """Drop every checkpoint of the programme (it was erased: they hold its
        personal fields as they were)."""
        with self._lock:
            for key in [key for key in self._states if key[0] == programme_id]:
                del self._states[key]

    def replay(self, repository: Repository[UUID], programme_id: UUID, version: int
               ) -> Programme | None:
        """The programme as it stood after `version` (or at its last version, if
        earlier; None if it has no events): from the nearest checkpoint, keeping
        the ones it passes."""
        start = self.nearest(programme_id, version)
        programme = copy.deepcopy(start) if start is not None else None
        events = repository.event_store.get(
            programme_id, gt=start.version if start is not None else None, lte=version)
        for event in events:
            programme = event.mutate(programme)
            if programme is not None:
                self.keep(programme)
        return programme


#: How many programmes' clinics a process remembers (least recently used first out).
OWNERS_KEPT = 20_000


class Owners:
    """Which clinic each programme belongs to, as far as this process has seen:
    a programme never changes clinic, so what is remembered stays true.

    Only a caller's own programme is answered from memory; every other check
    asks the store (`Ledger.owners`), so that another clinic's programme and a
    programme that does not exist cost the same one index lookup."""

    def __init__(self, kept: int = OWNERS_KEPT) -> None:
        self.kept = kept
        # Keyed by the ids' ints, which hash in C (a UUID hashes in Python).
        self._owners: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def is_owner(self, clinic_id: str, programme_id: UUID) -> bool:
        return bool(self.partition(clinic_id, (programme_id,))[0])

    def partition(self, clinic_id: str, programme_ids: Iterable[UUID]
                  ) -> tuple[list[UUID], list[UUID]]:
        """These programmes split into those known to be the clinic's and the rest
        (one lock for all)."""
        known: list[UUID] = []
        rest: list[UUID] = []
        owners = self._owners
        with self._lock:
            for programme_id in programme_ids:
                key = programme_id.int
                if owners.get(key) == clinic_id:
                    owners.move_to_end(key)
                    known.append(programme_id)
                else:
                    rest.append(programme_id)
        return known, rest

    def remember(self, owners: dict[UUID, str]) -> None:
        with self._lock:
            for programme_id, clinic_id in owners.items():
                key = programme_id.int
                self._owners[key] = clinic_id
                self._owners.move_to_end(key)
            while len(self._owners) > self.kept:
                self._owners.popitem(last=False)
