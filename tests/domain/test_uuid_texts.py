"""`UuidTexts` is str(UUID), remembered: the same text for every id, however many
it has seen (its memory is bounded: it forgets all at once), and whatever was
remembered for it (only a text equal to str(value) ever is); the programme and
event id memos are ones of it."""

from __future__ import annotations

import uuid

from domain.application import programme_text
from domain.programme import EVENT_ID_TEXTS, event_id_text
from domain.uuid_texts import UuidTexts

IDS = [uuid.uuid4() for _ in range(12)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]


def test_it_is_str_of_the_id_before_and_after_it_forgets():
    texts = UuidTexts(kept=5)
    for _ in range(3):
        for value in IDS:
            assert texts.text(value) == str(value)
            assert texts.text(uuid.UUID(str(value))) == str(value)
            assert len(texts) <= 5


def test_a_remembered_text_is_the_one_given_and_memory_stays_bounded():
    texts = UuidTexts(kept=5)
    for value in IDS:
        texts.remember(value, str(value))
        assert len(texts) <= 5
        assert texts.text(value) == str(value)


def test_the_programme_and_event_id_memos_write_str_of_the_id():
    for value in IDS:
        assert programme_text(value) == str(value)
        assert event_id_text(value) == str(value)
    assert len(EVENT_ID_TEXTS) <= EVENT_ID_TEXTS.kept
