"""Content digests are stored and compared with retries of events recorded by
older releases: `EventEnvelope.content_digest` must give, byte for byte, the
digest every release has given (sha256 of the canonical JSON of the envelope,
as `json.JSONEncoder(sort_keys=True, separators=(",", ":"))` writes it)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import EventEnvelope


def released_digest(envelope: EventEnvelope, programme_id: UUID) -> str:
    """The digest as releases up to 0.9 made it (one canonical encode of one dict)."""
    canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode({
        "programme_id": str(programme_id),
        "type": envelope.type,
        "occurred_at": envelope.occurred_at.astimezone(UTC).isoformat(),
        "recorded_by": envelope.recorded_by,
        "data": envelope.data,
    })
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Any text: ASCII, accents, other scripts, emoji and lone surrogates, control
#: characters, quotes and backslashes (each escaped by the encoding).
texts = st.text(alphabet=st.characters(), max_size=30) | st.sampled_from(
    ["", "\"", "\\", "\u2028", "é", "患者", "🦴", "\ud800", "\x00\x1f", "</script>"])
scalars = (st.none() | st.booleans() | st.integers()
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20)
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from(
                           [UTC, timezone(timedelta(hours=5, minutes=30)),
                            timezone(timedelta(hours=-8))]))


@settings(max_examples=1000)
@given(event_id=st.uuids(), type_=texts, occurred_at=moments, recorded_by=texts,
       data=st.dictionaries(texts, json_values, max_size=6), programme_id=st.uuids())
def test_the_digest_is_byte_identical_to_the_released_one(
        event_id: UUID, type_: str, occurred_at: datetime, recorded_by: str,
        data: dict[str, Any], programme_id: UUID) -> None:
    envelope = EventEnvelope(event_id, type_, occurred_at, recorded_by, data)
    expected = released_digest(envelope, programme_id)
    assert envelope.content_digest(programme_id) == expected
    assert envelope.content_digest(str(programme_id)) == expected


def test_the_digest_of_an_example_is_the_one_main_made() -> None:
    # Worked out with the code before the digest was written out key by key.
    envelope = EventEnvelope(
        UUID("00000000-0000-4000-8000-000000000001"), "SessionCompleted",
        datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))), "physio-ü",
        {"duration_minutes": 20, "force_percent_body_weight": 25.5, "notes": "müde 😴",
         "nested": {"b": [1, 2.0, None, True], "a": "x"}})
    programme_id = UUID("11111111-1111-4111-8111-111111111111")
    assert envelope.content_digest(programme_id) == released_digest(envelope, programme_id)
    assert envelope.content_digest(programme_id) == (
        "258a26be8db8a4aea8ad87f8ac721544abf839834547f42eee282233be77cd19")
