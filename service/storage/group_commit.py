"""Group commit: concurrent saves in one worker share one transaction.

The cost of a save is mostly per transaction (a table lock and a commit
that waits for the disk), not per event. When several request threads of a
worker save at the same moment, the first becomes the leader: it takes
every save queued so far and writes them in one transaction, while the
others wait for their result. Nothing waits for a group to fill: with one
save at a time, each is its own group, so latency is unchanged at low load.

Every guarantee still holds per save. Under the write lock, before writing
anything, the store screens a group for the saves that would break a unique
key or a programme's run of versions — a version another writer has taken,
an event_id already recorded, or the same taken by an earlier save of the
group (domain.ledger.screen) — and those alone fail with IntegrityError
while the rest are written in the same transaction. A conflict is therefore
answered at once, never retried as if the database had failed. Should the
group's write fail all the same, its saves are written again one at a time,
so only the offending save gets the error.

A store mixes this in before the library's recorder
(`class R(GroupCommit, LibraryRecorder)`) and implements `record_saves`,
which bulk ingest also calls directly with many saves at once.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.ledger import Outcome, Save, ledger_entries_for


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Pending:
    """A save waiting for its group's write."""

    save: Save
    done: bool = False
    positions: Sequence[int] | None = None
    error: BaseException | None = None
    # Held from the start; released once, by the leader that wrote this save
    # (done) or that hands this save's thread the lead (not done).
    wake: threading.Lock = field(default_factory=_held_lock)


class GroupCommit:
    """Mix into a recorder before the library's class: `class R(GroupCommit, LibRecorder)`."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if not stored_events:
            return None
        # Checked before anything is queued: a save without its ledger is a
        # bug in the caller, and never reaches the database.
        pending = _Pending(Save(stored_events,
                                ledger_entries_for(stored_events, kwargs.get("ledger"))))
        state = self.__group_state()
        with state.lock:
            state.queue.append(pending)
            leads = not state.leading
            state.leading = True
        if not leads:
            pending.wake.acquire()
        if not pending.done:
            self.__lead(state)
        if pending.error is not None:
            raise pending.error
        return pending.positions

    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        """Write the saves in one transaction under the store's write lock,
        refusing the ones that would break a unique key or a programme's run of
        versions (domain.ledger.screen). Raises what the write raised otherwise."""
        raise NotImplementedError

    def __lead(self, state: _GroupState) -> None:
        """Write every save queued so far as one group, then wake exactly the
        threads whose saves it wrote, and hand the lead to the first save queued
        meanwhile (if any). Each waiting thread is woken once, by its own lock:
        with a shared condition, every write woke every waiter to contend for one
        lock, and that switching cost more CPU than the write."""
        with state.lock:
            group, state.queue = state.queue, []
        try:
            self.__write(group)
        except BaseException as error:
            # Not one save of the group may wake undone: it would take the lead
            # beside the successor.
            for pending in group:
                if not pending.done:
                    pending.error, pending.done = error, True
            raise
        finally:
            with state.lock:
                successor = state.queue[0] if state.queue else None
                state.leading = successor is not None
            for pending in group:
                pending.wake.release()
            if successor is not None:
                successor.wake.release()

    def __write(self, group: list[_Pending]) -> None:
        try:
            outcomes = self.record_saves([pending.save for pending in group])
        except IntegrityError:
            if len(group) == 1:
                group[0].error, group[0].done = sys.exc_info()[1], True
                return
            # Not foreseen by the screen (a store edited by hand?): each save
            # alone, so that only the offending one fails.
            for save in group:
                self.__write([save])
            return
        except BaseException as error:  # noqa: BLE001 - the store failed them all
            for save in group:
                save.error, save.done = error, True
            return
        for save, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, IntegrityError):
                save.error = outcome
            else:
                save.positions = outcome
            save.done = True

    def __group_state(self) -> _GroupState:
        state = self.__dict__.get("_group_state")
        if state is None:
            state = self.__dict__.setdefault("_group_state", _GroupState())
        return state


class _GroupState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: list[_Pending] = []
        # True from the moment a thread takes the lead until a leader finds
        # nothing queued after its write.
        self.leading = False
