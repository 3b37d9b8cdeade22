"""The commands record their events through `Programme._record` (what the
library's trigger_event does with the class made for each `@event` method): every type a
clinic posts is recorded as that type, applied by its own method, the same
as a replay of the stored events applies it, and the same as calling the
`@event` method itself records it."""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta
from typing import Any

import eventsourcing.domain
import pytest

from domain import programme as programme_module
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


def _recorded_and_erased(envelopes: list[dict[str, Any]], monkeypatch: Any) -> Programme:
    """`recorded`, then erased, each event's timestamp one second after the last (both
    ways of recording take it from the library's clock: a fixed one makes them comparable)."""
    ticks = iter(range(10_000))
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo",
                        lambda: b.moment(100) + timedelta(seconds=next(ticks)))
    programme = recorded(envelopes)
    programme.erase(uuid.UUID(int=11), b.moment(40), "admin", "patient asked")
    return programme


def test_every_type_a_command_records_is_recorded_its_own_way():
    assert set(programme_module._RECORDABLE) == {*Programme.COMMANDS, "ProgrammeErased"}


def test_record_makes_exactly_what_the_librarys_trigger_event_makes(monkeypatch):
    """Every field of every event in its order (the stored JSON follows it), its class,
    and the programme after each, with `_record`'s own way and with the library's."""
    envelopes = posted()
    own = _recorded_and_erased(envelopes, monkeypatch)
    monkeypatch.setattr(programme_module, "_RECORDABLE", {})
    library = _recorded_and_erased(envelopes, monkeypatch)
    own_events, library_events = own.collect_events(), library.collect_events()
    assert len(own_events) == len(library_events) == len(envelopes) + 2
    for mine, theirs in zip(own_events, library_events, strict=True):
        assert type(mine) is type(theirs)
        assert list(vars(mine).items()) == list(vars(theirs).items())
        assert mine == theirs
    assert list(vars(own).items()) == list(vars(library).items())
    mapper = Programmes().mapper
    assert ([mapper.to_stored_event(e) for e in own_events]
            == [mapper.to_stored_event(e) for e in library_events])


def test_a_method_that_fails_leaves_the_programme_as_the_library_leaves_it(monkeypatch):
    """Applied before the version moves on: nothing pending, the version as it was."""
    def fails(*args: Any) -> None:
        raise RuntimeError("fails")

    for own_way in (True, False):
        programme = recorded(posted()[:2])
        programme.collect_events()
        version = programme.version
        event_class = Programme.SessionMissed
        monkeypatch.setattr(programme_module, "_RECORDABLE",
                            {"SessionMissed": (event_class, fails)} if own_way else {})
        monkeypatch.setitem(eventsourcing.domain.decorated_funcs, event_class, fails)
        with pytest.raises(RuntimeError):
            programme.miss_session(uuid.UUID(int=12), b.moment(2), "x", b.missed_data(), NOW)
        monkeypatch.undo()
        assert programme.version == version and programme.collect_events() == []
