"""Group commit's hand-over (service/storage/group_commit.py): each waiting save
is woken once, with its own outcome; saves queued during a write are written
by the next leader; only one group is written at a time; a group whose write
fails wakes every save in it with the failure, and none is left waiting.

The recorder here implements only `record_saves`, the hook a store
implements: it holds each group's write until the test lets it go, so the test
decides which saves queue behind which write. The stores' own group commits
are exercised end to end in tests/integration/test_group_commit.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.ledger import LedgerEntry, Outcome, Save
from service.storage.group_commit import GroupCommit

WAIT = 10  # seconds: only reached when the hand-over is broken


class HeldRecorder(GroupCommit):
    """Writes a group when the test releases it; refuses saves of `refused` ids."""

    def __init__(self) -> None:
        self.groups: list[list[uuid.UUID]] = []
        self.writing = 0
        self.most_writing_at_once = 0
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.refused: set[uuid.UUID] = set()
        self.fail_next: BaseException | None = None
        self._guard = threading.Lock()
        self._head = 0

    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        with self._guard:
            self.writing += 1
            self.most_writing_at_once = max(self.most_writing_at_once, self.writing)
        try:
            self.groups.append([save.ledger[0].event_id for save in saves])
            self.entered.release()
            assert self.release.acquire(timeout=WAIT), "the test never let the write go"
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            outcomes: list[Outcome] = []
            for save in saves:
                if save.ledger[0].event_id in self.refused:
                    outcomes.append(IntegrityError("refused"))
                else:
                    self._head += 1
                    outcomes.append([self._head])
            return outcomes
        finally:
            with self._guard:
                self.writing -= 1


def stored(event_id: uuid.UUID) -> tuple[list[StoredEvent], list[LedgerEntry]]:
    return ([StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                         topic="t", state=b"{}")],
            [LedgerEntry(event_id=event_id, clinic_id="clinic-a", event_type="T",
                         content_digest=None)])


class Poster(threading.Thread):
    """One request thread's save: its outcome, or what it raised."""

    def __init__(self, recorder: HeldRecorder) -> None:
        super().__init__(daemon=True)
        self.recorder = recorder
        self.event_id = uuid.uuid4()
        self.outcome: object = None

    def run(self) -> None:
        events, ledger = stored(self.event_id)
        try:
            self.outcome = self.recorder.insert_events(events, ledger=ledger)
        except BaseException as error:  # noqa: BLE001 - the outcome under test
            self.outcome = error


def queued(recorder: HeldRecorder, count: int) -> None:
    """Wait until `count` saves wait in the recorder's queue."""
    state = recorder.__dict__["_group_state"]
    for _ in range(WAIT * 100):
        with state.lock:
            if len(state.queue) >= count:
                return
        threading.Event().wait(0.01)
    raise AssertionError(f"{count} saves never queued")


def test_saves_queued_during_a_write_are_the_next_group_each_with_its_outcome():
    recorder = HeldRecorder()
    first = Poster(recorder)
    first.start()
    assert recorder.entered.acquire(timeout=WAIT)  # the first save's write is under way
    behind = [Poster(recorder) for _ in range(5)]
    recorder.refused.add(behind[2].event_id)
    for poster in behind:
        poster.start()
    queued(recorder, 5)
    recorder.release.release()  # the first group's write ends; the lead passes on
    assert recorder.entered.acquire(timeout=WAIT)
    recorder.release.release()
    for poster in [first, *behind]:
        poster.join(WAIT)
        assert not poster.is_alive(), "a save was never woken"

    # The threads behind queue in whatever order they reach the lock.
    first_group, second_group = recorder.groups
    assert first_group == [first.event_id]
    assert sorted(second_group) == sorted(p.event_id for p in behind)
    assert recorder.most_writing_at_once == 1
    assert first.outcome == [1]
    assert isinstance(behind[2].outcome, IntegrityError)
    by_event_id = {p.event_id: p for p in behind}
    written = [e for e in second_group if e != behind[2].event_id]
    assert [by_event_id[e].outcome for e in written] == [[2], [3], [4], [5]]


def test_a_failed_write_wakes_every_save_of_its_group_with_the_failure():
    recorder = HeldRecorder()
    first = Poster(recorder)
    first.start()
    assert recorder.entered.acquire(timeout=WAIT)
    behind = [Poster(recorder) for _ in range(3)]
    for poster in behind:
        poster.start()
    queued(recorder, 3)
    recorder.release.release()
    assert recorder.entered.acquire(timeout=WAIT)
    recorder.fail_next = OSError("disk gone")
    recorder.release.release()
    for poster in [first, *behind]:
        poster.join(WAIT)
        assert not poster.is_alive(), "a save was never woken"

    assert first.outcome == [1]
    for poster in behind:
        assert isinstance(poster.outcome, OSError)
    # Nothing is left leading: the next save is written at once, alone.
    after = Poster(recorder)
    after.start()
    assert recorder.entered.acquire(timeout=WAIT)
    recorder.release.release()
    after.join(WAIT)
    assert after.outcome == [2]
    assert recorder.groups[-1] == [after.event_id]


@pytest.mark.parametrize("threads", [16])
def test_many_threads_saving_at_once_each_get_their_own_position(threads):
    recorder = HeldRecorder()
    posters = [Poster(recorder) for _ in range(threads)]
    stop = threading.Event()

    def let_every_write_go() -> None:
        while not stop.is_set():
            if recorder.entered.acquire(timeout=0.05):
                recorder.release.release()

    releaser = threading.Thread(target=let_every_write_go, daemon=True)
    releaser.start()
    for poster in posters:
        poster.start()
    for poster in posters:
        poster.join(WAIT)
        assert not poster.is_alive(), "a save was never woken"
    stop.set()
    releaser.join(WAIT)

    assert sorted(p.outcome[0] for p in posters) == list(range(1, threads + 1))
    assert sorted(e for group in recorder.groups for e in group) == sorted(
        p.event_id for p in posters)
    assert recorder.most_writing_at_once == 1
