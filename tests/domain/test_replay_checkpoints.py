"""Replays to an earlier version start from the nearest checkpoint: the same
state as a replay from the first event, reading at most CHECKPOINT_EVERY - 1
events once the programme has been replayed that far."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from domain import programme_cache
from domain.application import Programmes
from domain.programme_cache import CHECKPOINT_EVERY, Checkpoints
from tests import builders as b
from tests.domain.test_application import application, post

EVENTS = 2 * CHECKPOINT_EVERY + 30


def long_programme(app: Programmes) -> uuid.UUID:
    programme_id = uuid.uuid4()
    post(app, programme_id, b.started())
    for n in range(1, EVENTS):
        event = b.pain(n % 10, days=n / 10) if n % 3 else b.session(days=n / 10)
        if n == CHECKPOINT_EVERY + 7:  # a correction, which changes earlier entries' data
            first_session = app.history("clinic-a", programme_id)[3]
            event = b.corrected({"event_id": first_session["event_id"],
                                 "data": first_session["data"]}, days=n / 10,
                                duration_minutes=50)
        post(app, programme_id, event)
    return programme_id


def from_the_first_event(app: Programmes, programme_id: uuid.UUID, version: int) -> Any:
    """The library's own replay, with no checkpoint and no cache."""
    return app.repository.get(programme_id, version=version,
                              projector_func=programme_cache.replay).state()


class CountingEvents:
    """Counts the events the store hands out (a replay's reads)."""

    def __init__(self, app: Programmes) -> None:
        self.count = 0
        store = app.repository.event_store
        get = store.get

        def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for event in get(*args, **kwargs):
                self.count += 1
                yield event

        store.get = counted  # type: ignore[method-assign]


def test_every_version_replays_to_the_state_it_had():
    app = application()
    programme_id = long_programme(app)
    for version in [*range(1, EVENTS + 1), EVENTS, 1, CHECKPOINT_EVERY, CHECKPOINT_EVERY + 1]:
        replayed = app.programme("clinic-a", programme_id, version=version)
        assert replayed.version == version
        assert replayed.state() == from_the_first_event(app, programme_id, version), version


def test_a_replay_reads_only_the_events_since_the_nearest_checkpoint():
    app = application()
    programme_id = long_programme(app)
    events = CountingEvents(app)
    app.programme("clinic-a", programme_id, version=EVENTS)
    assert events.count == EVENTS  # the first time: from the first event
    for version in (EVENTS, EVENTS - 1, CHECKPOINT_EVERY + 3, 7, 2 * CHECKPOINT_EVERY):
        events.count = 0
        app.programme("clinic-a", programme_id, version=version)
        assert events.count == version % CHECKPOINT_EVERY, version
    assert app.programme("clinic-a", programme_id).version == EVENTS


def test_a_checkpoint_is_never_changed_by_the_replays_that_start_from_it():
    app = application()
    programme_id = long_programme(app)
    at_checkpoint = app.programme("clinic-a", programme_id, version=CHECKPOINT_EVERY).state()
    app.programme("clinic-a", programme_id, version=EVENTS)
    app.programme("clinic-a", programme_id, version=CHECKPOINT_EVERY + 20)
    again = app.programme("clinic-a", programme_id, version=CHECKPOINT_EVERY)
    assert again.state() == at_checkpoint


def test_checkpoints_are_bounded_and_the_least_recently_used_go_first():
    app = application()
    checkpoints = Checkpoints(every=10, kept=3)
    programme_id = long_programme(app)
    checkpoints.replay(app.repository, programme_id, 45)  # keeps 10, 20, 30, 40: 10 goes
    assert checkpoints.nearest(programme_id, 15) is None
    assert checkpoints.nearest(programme_id, 45).version == 40
    assert checkpoints.nearest(programme_id, 29).version == 20
