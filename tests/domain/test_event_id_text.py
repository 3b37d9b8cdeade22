"""`event_id_text` is str(event_id), remembered: the same text for every id, however
many it has seen (its memory is bounded: it forgets all at once), and whatever
was remembered for it (only a text equal to str(event_id) ever is)."""

from __future__ import annotations

import uuid

from domain import programme
from domain.programme import event_id_text, remember_event_id_text


def test_it_is_str_of_the_id_before_and_after_it_forgets(monkeypatch):
    monkeypatch.setattr(programme, "EVENT_ID_TEXTS_KEPT", 5)
    monkeypatch.setattr(programme, "_event_id_texts", {})
    ids = [uuid.uuid4() for _ in range(12)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    for _ in range(3):
        for event_id in ids:
            assert event_id_text(event_id) == str(event_id)
            assert event_id_text(uuid.UUID(str(event_id))) == str(event_id)
            assert len(programme._event_id_texts) <= 5


def test_a_remembered_text_is_the_one_given_and_memory_stays_bounded(monkeypatch):
    monkeypatch.setattr(programme, "EVENT_ID_TEXTS_KEPT", 5)
    monkeypatch.setattr(programme, "_event_id_texts", {})
    for _ in range(12):
        event_id = uuid.uuid4()
        remember_event_id_text(event_id, str(event_id))
        assert event_id_text(event_id) == str(event_id)
        assert len(programme._event_id_texts) <= 5
