"""The commands record their events through `Programme._record` (the library's
trigger_event with the class made for each `@event` method): every type a
clinic posts is recorded as that type, applied by its own method, the same
as a replay of the stored events applies it, and the same as calling the
`@event` method itself records it."""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta
from typing import Any

from domain.application import Programmes
from domain.programme import Programme, derived_event_id
from tests import builders as b

NOW = b.moment(60)


def posted() -> list[dict[str, Any]]:
    """One of every type a clinic posts (and the pause a severe adverse event makes)."""
    session, pain = b.session(1), b.pain(6, 2)
    return [b.started(), session, b.missed(3), pain, b.adjusted(4, sessions_per_week=2),
            b.adverse("severe", 5), b.resumed(6), b.paused(7), b.resumed(8),
            b.corrected(session, 9, duration_minutes=25), b.corrected(pain, 9, pain_nrs=5),
            b.discharged(30), b.corrected(session, 31, duration_minutes=20)]


def recorded(envelopes: list[dict[str, Any]]) -> Programme:
    programme = None
    for envelope in b.event_envelopes(*envelopes):
        programme = Programmes._apply(programme, "clinic", uuid.UUID(int=7), envelope, NOW)
    assert programme is not None
    return programme


def test_each_posted_type_is_recorded_as_itself_and_replays_to_the_same_state():
    envelopes = posted()
    programme = recorded(envelopes)
    events = programme.collect_events()
    adverse_id = uuid.UUID(envelopes[5]["event_id"])
    expected = [(uuid.UUID(e["event_id"]), e["type"]) for e in envelopes]
    expected.insert(6, (derived_event_id(adverse_id, "pause"), "ProgrammePaused"))
    assert [(e.event_id, type(e).__name__) for e in events] == expected
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.state() == programme.state()
    assert programme.status == "discharged" and programme.corrections == 3
    assert programme.sessions_missed == 1 and programme.plan["sessions_per_week"] == 2


def test_record_gives_what_calling_the_event_method_gives():
    programme = recorded(posted()[:2])
    programme.collect_events()
    by_method, by_record = copy.deepcopy(programme), copy.deepcopy(programme)
    when = b.moment(3) + timedelta(minutes=1)
    data = b.session_data(duration_minutes=17)
    by_method._session_completed(event_id=uuid.UUID(int=9), occurred_at=when,
                                 recorded_by="x", data=data)
    by_record._record("SessionCompleted", event_id=uuid.UUID(int=9), occurred_at=when,
                      recorded_by="x", data=data)
    [made_by_method], [made_by_record] = by_method.collect_events(), by_record.collect_events()
    assert type(made_by_method) is type(made_by_record)
    fields = ("originator_id", "originator_version", "event_id", "occurred_at",
              "recorded_by", "data")
    assert ([getattr(made_by_method, f) for f in fields]
            == [getattr(made_by_record, f) for f in fields])
    assert by_method.state() == by_record.state()
