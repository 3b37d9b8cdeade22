"""`programme_text` is str(programme_id), remembered: the same text for every id,
however many it has seen (its memory is bounded: it forgets all at once)."""

from __future__ import annotations

import uuid

from domain import application
from domain.application import programme_text


def test_it_is_str_of_the_id_before_and_after_it_forgets(monkeypatch):
    monkeypatch.setattr(application, "PROGRAMME_TEXTS_KEPT", 5)
    monkeypatch.setattr(application, "_programme_texts", {})
    ids = [uuid.uuid4() for _ in range(12)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    for _ in range(3):
        for programme_id in ids:
            assert programme_text(programme_id) == str(programme_id)
            assert programme_text(uuid.UUID(str(programme_id))) == str(programme_id)
            assert len(application._programme_texts) <= 5
