"""Seeding the demo through the application layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from service.demo.seeding import DemoError, seed_demo, store_is_empty, token_table
from service.demo.simulation import DEMO_UNTIL, demo_clinics, simulate
from tests.demo.reading import late_events, responded
from tests.stores import components_at

CLINICS, PROGRAMMES = 2, 15


@pytest.fixture
def store(store_url):
    """The service's parts on a fresh store."""
    components = components_at(store_url)
    yield components
    components.close()


def stored_histories(store, clinics: int, programmes: int, seed: int = 1):
    """Each simulated programme's history as the store holds it (version order)."""
    return [
        (simulated, store.programmes.history(simulated.clinic_id, simulated.programme_id))
        for simulated in simulate(seed, demo_clinics(clinics), programmes)
    ]


def test_seeding_records_everything_with_no_refusal_and_the_variety_promised(store):
    assert store_is_empty(store)
    report = seed_demo(store, clinics=CLINICS, programmes=PROGRAMMES, issue_tokens=False)

    assert report.refusals == []
    assert report.programmes == CLINICS * PROGRAMMES
    assert report.clinics_registered == ["harbour-spine", "lindenweg-physio"]
    assert not store_is_empty(store)
    programmes = stored_histories(store, CLINICS, PROGRAMMES)
    histories = [history for _, history in programmes]

    # Everything posted was recorded, in posting order, plus the pause that
    # each severe adverse event brings (the aggregate records it).
    types = Counter(e["type"] for h in histories for e in h)
    automatic_pauses = [e for h in histories for e in h if e["type"] == "ProgrammePaused"
                        and e["data"]["reason"] == "severe_adverse_event"]
    assert automatic_pauses, "a severe adverse event pauses the programme"
    assert report.events_recorded == report.events_posted + len(automatic_pauses)
    for simulated, history in programmes:
        stored = [e for e in history if e not in automatic_pauses]
        assert [(e["event_id"], e["type"]) for e in stored] == [
            (e["event_id"], e["type"]) for e in simulated.envelopes()]

    settings = Counter(h[0]["data"]["setting"] for h in histories)
    modalities = Counter(h[0]["data"]["plan"]["modality"] for h in histories)
    assert {"in_office", "at_home"} <= set(settings)
    assert {"mechanical_table", "decompression_mat"} <= set(modalities)

    # Responders and non-responders by the rule of docs/metrics.md, corrections applied.
    response = Counter(responded(h) for h in histories)
    assert response[True] > 0 and response[False] > 0

    assert types["AdverseEventReported"] > 0
    assert types["ProgrammeResumed"] > 0
    assert types["ProgrammeDischarged"] > 0
    assert types["EntryCorrected"] > 0
    # Corrected entries point at their correction in the stored history.
    assert sum(1 for h in histories for e in h if e["corrected_by"]) == types["EntryCorrected"]
    # Late posts: recorded after events that happened later than they did.
    assert sum(late_events(h) for h in histories) > 0

    statuses = Counter(store.programmes.programme(s.clinic_id, s.programme_id).status
                       for s, _ in programmes)
    assert statuses["discharged"] > 0 and statuses["active"] > 0


def test_seeding_again_with_the_same_seed_adds_nothing(store):
    first = seed_demo(store, clinics=1, programmes=3, issue_tokens=False)
    again = seed_demo(store, clinics=1, programmes=3, issue_tokens=False)
    assert first.events_recorded > 0 and first.clinics_registered == ["harbour-spine"]
    assert again.events_recorded == 0 and again.refusals == []
    assert again.batches_replayed == again.batches == first.batches
    assert again.clinics_existing == ["harbour-spine"]
    # More programmes later only adds the new ones.
    more = seed_demo(store, clinics=1, programmes=4, issue_tokens=False)
    assert more.batches_replayed == first.batches and more.events_recorded > 0


def test_demo_tokens_cover_every_role_and_clinic(store):
    report = seed_demo(store, clinics=2, programmes=1)
    issued = Counter((t.role, t.clinic_id) for t in report.tokens)
    assert issued == Counter({
        ("admin", None): 1, ("auditor", None): 1, ("viewer", None): 1,
        ("writer", "harbour-spine"): 1, ("viewer", "harbour-spine"): 1,
        ("writer", "lindenweg-physio"): 1, ("viewer", "lindenweg-physio"): 1,
    })
    directory = store.directory
    names = {c["clinic_id"]: c["name"] for c in directory.clinics()}
    for token in report.tokens:
        token_id = token.token.split("_")[1]
        record = directory.token(token_id)
        assert record is not None and record.matches(token.token.split("_", 2)[2])
        assert (record.role, record.clinic_id) == (token.role, token.clinic_id)
    assert names == {"harbour-spine": "Harbour Spine Clinic",
                     "lindenweg-physio": "Physiotherapie am Lindenweg"}
    table = token_table(report.tokens).splitlines()
    assert table[0].split()[:3] == ["role", "scope", "for"]
    assert all(line.endswith(t.token) for line, t in zip(table[1:], report.tokens, strict=True))


def test_a_store_with_only_an_admin_token_is_not_empty(store):
    # A deployment being bootstrapped must never receive the demo.
    store.directory.issue_token("admin", None, "ops")
    assert not store_is_empty(store)


def test_until_after_the_clock_is_refused(store_url):
    behind = components_at(store_url, clock=lambda: DEMO_UNTIL - timedelta(days=1))
    try:
        with pytest.raises(DemoError, match="after this machine's clock"):
            seed_demo(behind, clinics=1, programmes=1)
    finally:
        behind.close()
    # A clock just before `until` is fine: occurred_at may be 5 minutes ahead.
    just_before = components_at(store_url,
                                clock=lambda: datetime(2026, 9, 1, 11, 57, tzinfo=UTC))
    try:
        report = seed_demo(just_before, clinics=1, programmes=1, issue_tokens=False,
                           until=datetime(2026, 9, 1, 12, tzinfo=UTC))
    finally:
        just_before.close()
    assert report.refusals == [] and report.events_recorded > 0
