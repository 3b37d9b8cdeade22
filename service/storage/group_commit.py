"""Group commit: concurrent saves in one worker share one transaction.

The cost of a save is mostly per transaction (a table lock and a commit
that waits for the disk), not per event. When several request threads of a
worker save at the same moment, the first becomes the leader: it takes
every save queued so far and writes them in one transaction, while the
others wait for their result. Nothing waits for a group to fill: with one
save at a time, each is its own group, so latency is unchanged at low load.

Every guarantee still holds per save: if the combined transaction fails
(one save conflicts with a concurrent writer, or repeats an event_id), the
group is written again one save at a time, so only the offending save gets
its IntegrityError and the others succeed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent


class ConflictingSaves(IntegrityError):
    """Raised by a recorder, before it writes anything, for the saves of a
    group whose first version is no longer the next one (another writer got
    there first)."""

    def __init__(self, indices: list[int], detail: str) -> None:
        super().__init__(detail)
        self.indices = indices
        self.detail = detail


@dataclass
class _PendingSave:
    stored_events: Sequence[StoredEvent]
    kwargs: dict[str, Any]
    done: bool = False
    positions: Sequence[int] | None = None
    error: BaseException | None = None


class GroupCommit:
    """Mix into a recorder before the library's class: `class R(GroupCommit, LibRecorder)`."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        state = self.__group_state()
        pending = _PendingSave(stored_events, kwargs)
        with state.condition:
            state.queue.append(pending)
            while not pending.done and state.leading:
                state.condition.wait()
            if not pending.done:
                state.leading = True
                group, state.queue = state.queue, []
        if not pending.done:
            try:
                self.__write(group)
            finally:
                with state.condition:
                    state.leading = False
                    state.condition.notify_all()
        if pending.error is not None:
            raise pending.error
        return pending.positions

    def __write(self, group: list[_PendingSave]) -> None:
        while len(group) > 1:
            try:
                positions = super().insert_events(  # type: ignore[misc]
                    [event for save in group for event in save.stored_events],
                    ledger=[entry for save in group for entry in save.kwargs["ledger"]],
                    group_sizes=[len(save.stored_events) for save in group],
                )
            except ConflictingSaves as conflict:
                # The store found, before writing, saves that another writer
                # has overtaken: they fail alone, the rest are tried again.
                for index in conflict.indices:
                    group[index].error = IntegrityError(conflict.detail)
                    group[index].done = True
                group = [s for i, s in enumerate(group) if i not in conflict.indices]
                continue
            except Exception:  # noqa: BLE001 - retried one by one below
                break
            assert positions is not None
            offset = 0
            for save in group:
                count = len(save.stored_events)
                save.positions = positions[offset:offset + count]
                save.done = True
                offset += count
            return
        for save in group:
            try:
                save.positions = super().insert_events(  # type: ignore[misc]
                    save.stored_events, **save.kwargs
                )
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                save.error = error
            save.done = True

    def __group_state(self) -> _GroupState:
        state = self.__dict__.get("_group_state")
        if state is None:
            state = self.__dict__.setdefault("_group_state", _GroupState())
        return state


class _GroupState:
    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.queue: list[_PendingSave] = []
        self.leading = False
