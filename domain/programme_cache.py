"""Programmes held in this process's memory between commands.

The library's repository keeps recently used programmes in a cache and
fast-forwards them from the store (the store stays the truth). Two things
here are ours, both for speed, both safe only together:

- commands run on the cached programme itself, not on a deep copy (copying
  it cost a fifth of a single-event post), so one command at a time per
  programme in this process: `CommandLocks`;
- a programme that a failed command may have changed (events applied but
  never saved) is dropped from the cache.

Other processes still race; the store refuses the loser of a race.
"""

from __future__ import annotations

import threading
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
        self._locks: dict[UUID, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def held(self, programme_id: UUID) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(programme_id, (threading.Lock(), 0))
            self._locks[programme_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[programme_id]
                if users == 1:
                    del self._locks[programme_id]
                else:
                    self._locks[programme_id] = (lock, users - 1)


def find(repository: Repository[UUID], programme_id: UUID, version: int | None = None, *,
         copy: bool = True) -> Programme | None:
    """The programme (None if it has no events); `copy=False` only under its command lock."""
    try:
        programme: Programme = repository.get(programme_id, version=version,
                                              projector_func=replay,
                                              deepcopy_from_cache=copy)
        return programme
    except AggregateNotFoundError:
        return None


def drop(repository: Repository[UUID], programme_id: UUID) -> None:
    """Forget the cached programme (it may hold events that were never saved)."""
    if repository.cache is not None:
        try:
            repository.cache.get(programme_id, evict=True)
        except KeyError:
            pass


def replay(programme: Programme | None, events: Iterable[Any]) -> Programme | None:
    """The library's project_aggregate without its per-event `isinstance` check
    against a runtime Protocol, which cost as much as the replay itself."""
    for event in events:
        programme = event.mutate(programme)
    return programme
