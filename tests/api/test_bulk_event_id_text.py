"""Bulk ingest reuses a line's event_id text for its receipt and its programme's
entries (domain.programme.EVENT_ID_TEXTS) only when it is the text str(UUID) makes:
any other form of the same UUID is answered in the canonical form, as a single
post is."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import programme
from service.http.bulk_ingest import CANONICAL_UUID, parse_line
from tests import builders as b
from tests.api.test_bulk import answered, ndjson, post_bulk
from tests.api.test_bulk import line as bulk_line


@given(st.uuids())
def test_the_canonical_pattern_accepts_exactly_what_str_makes(value):
    text = str(value)
    assert CANONICAL_UUID(text)
    for other in (text.upper(), "{" + text + "}", "urn:uuid:" + text, value.hex,
                  text + "\n", " " + text, text[:8] + text[9:13] + "-" + text[8] + text[13:]):
        if other != text:
            assert not CANONICAL_UUID(other)


@given(st.text(alphabet="0123456789abcdefABCDEF-+_ {}", min_size=30, max_size=40))
def test_whatever_it_accepts_is_str_of_its_uuid(text):
    if CANONICAL_UUID(text):
        assert str(uuid.UUID(text)) == text


def line(event_id: str) -> bytes:
    envelope = b.envelope("ProgrammeStarted", b.start_data(), event_id=event_id)
    return json.dumps({**envelope, "programme_id": str(uuid.uuid4())}).encode()


@pytest.mark.parametrize("form", [str, lambda u: str(u).upper(), lambda u: "{" + str(u) + "}",
                                  lambda u: u.hex, lambda u: "urn:uuid:" + str(u)])
def test_a_line_in_any_form_of_its_event_id_is_written_out_canonically(monkeypatch, form):
    monkeypatch.setattr(programme.EVENT_ID_TEXTS, "_texts", {})
    event_id = uuid.uuid4()
    post = parse_line(line(form(event_id)))
    assert post.envelopes[0].event_id == event_id
    assert programme.event_id_text(post.envelopes[0].event_id) == str(event_id)


def test_receipts_and_corrections_of_lines_with_any_form_of_event_id(client, tokens):
    programme_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(4)]
    forms = [str(ids[0]).upper(), "{" + str(ids[1]) + "}", ids[2].hex, str(ids[3])]
    sent = [bulk_line(programme_id, b.envelope(type_, data, days, event_id=form))
            for (type_, data), days, form in zip(
                [("ProgrammeStarted", b.start_data()), ("SessionCompleted", b.session_data()),
                 ("PainReported", b.pain_data(4)), ("SessionCompleted", b.session_data())],
                range(4), forms, strict=True)]
    results, summary = answered(post_bulk(client, ndjson(*sent), tokens.writer_a))
    assert summary["recorded"] == 4
    assert [r["receipt"]["recorded"][0]["event_id"] for r in results] == [str(i) for i in ids]
    for target in ids[1:]:  # each is known to its programme by its canonical text
        data = (b.pain_data(5) if target == ids[2] else b.session_data(duration_minutes=31))
        correction = b.envelope("EntryCorrected", b.correction_data(target, data), 4)
        corrected = client.post(f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                                json=correction, headers=tokens.writer_a)
        assert corrected.status_code == 201, corrected.json
