"""Recording many independent posts at once (bulk ingest), in memory: each post
answered as `record_events` would answer it alone, in order."""

from __future__ import annotations

import dataclasses
import uuid

from domain import errors
from domain.application import Post, Receipt
from tests import builders as b
from tests.domain.test_application import CLINIC, OTHER_CLINIC, application, post, started


def posts_of(*items: tuple[uuid.UUID, dict] | tuple[uuid.UUID, dict, int]) -> list[Post]:
    return [Post(item[0], b.event_envelopes(item[1]), item[2] if len(item) > 2 else None)
            for item in items]


def test_interleaved_posts_are_recorded_in_order_each_with_its_receipt():
    app = application()
    one, two = uuid.uuid4(), uuid.uuid4()
    sent = [(one, b.started()), (two, b.started()), (one, b.session(1)), (two, b.pain(4, 1)),
            (one, b.pain(3, 2), 2)]
    answers = app.record_posts(CLINIC, posts_of(*sent))
    assert all(isinstance(a, Receipt) and not a.replayed for a in answers)
    assert [(a.programme_id, a.version) for a in answers] == [
        (one, 1), (two, 1), (one, 2), (two, 2), (one, 3)]
    positions = [a.recorded[0]["position"] for a in answers]
    assert positions == [1, 2, 3, 4, 5]
    for programme_id in (one, two):
        history = app.history(CLINIC, programme_id)
        mine = [a for a in answers if a.programme_id == programme_id]
        assert [e["position"] for e in history] == [a.recorded[0]["position"] for a in mine]
        assert [e["event_id"] for e in history] == [a.recorded[0]["event_id"] for a in mine]


def test_each_post_fails_alone_and_changes_nothing_for_the_others():
    app = application()
    known = started(app)
    foreign = uuid.uuid4()
    post(app, foreign, b.started(), clinic=OTHER_CLINIC)
    fresh = uuid.uuid4()
    answers = app.record_posts(CLINIC, posts_of(
        (fresh, b.session(1)),  # a new programme must start with ProgrammeStarted
        (known, b.started()),  # rule 1: started twice
        (known, b.session(1), 5),  # expected_version 5, it is at 1
        (foreign, b.session(1)),  # another clinic's: as if it did not exist
        (known, b.pain(4, 1)),  # fine, after all that
        (known, b.session(2), 2),
    ))
    assert isinstance(answers[0], errors.ProgrammeNotFound)
    assert isinstance(answers[1], errors.AlreadyStarted)
    assert isinstance(answers[2], errors.VersionConflict)
    assert isinstance(answers[3], errors.ProgrammeNotFound)
    assert [a.version for a in answers[4:]] == [2, 3]
    assert app.programme(CLINIC, known).version == 3
    assert app.programme(OTHER_CLINIC, foreign).version == 1


def test_a_repeat_is_answered_with_its_original_receipt():
    app = application()
    programme_id = started(app)
    earlier = b.session(1)
    original = post(app, programme_id, earlier)
    again_in_batch = b.pain(5, 2)
    answers = app.record_posts(CLINIC, posts_of(
        (programme_id, earlier),  # recorded before this batch
        (programme_id, again_in_batch),
        (programme_id, again_in_batch),  # twice in the batch
        (programme_id, {**b.session(3), "event_id": earlier["event_id"]}),  # other content
        (programme_id, b.session(4)),
    ))
    assert answers[0] == dataclasses.replace(original, replayed=True)
    assert not answers[1].replayed and answers[2].replayed
    assert answers[2].recorded == answers[1].recorded
    assert isinstance(answers[3], errors.EventIdConflict)
    assert answers[4].version == 4
    assert [e["version"] for e in app.history(CLINIC, programme_id)] == [1, 2, 3, 4]


def test_a_refused_batch_post_leaves_its_programme_as_it_was():
    app = application()
    programme_id = started(app)
    halfway = Post(programme_id, b.event_envelopes(b.session(1), b.paused(2), b.session(3)))
    answers = app.record_posts(CLINIC, [halfway, *posts_of((programme_id, b.pain(2, 4)))])
    assert isinstance(answers[0], errors.DomainRuleViolation)  # no session while paused
    assert answers[1].version == 2
    assert app.programme(CLINIC, programme_id).state()["status"] == "active"


def test_repeats_right_after_a_chunk_of_new_events_are_answered_as_repeats():
    # A chunk of new events lets the next chunk skip looking its event ids up
    # (Programmes._recorded_before): the ledger's screen refuses the repeats instead.
    app = application()
    programme_id = started(app)
    earlier = b.session(1)
    original = post(app, programme_id, earlier)
    other = uuid.uuid4()
    new = app.record_posts(CLINIC, posts_of((other, b.started()), (other, b.session(1))))
    assert all(isinstance(a, Receipt) and not a.replayed for a in new)
    again_in_batch = b.pain(5, 2)
    answers = app.record_posts(CLINIC, posts_of(
        (other, b.pain(3, 2)),  # new, before the repeats
        (programme_id, earlier),  # recorded before this batch
        (programme_id, again_in_batch),
        (programme_id, again_in_batch),  # twice in the batch
        (programme_id, {**b.session(3), "event_id": earlier["event_id"]}),  # other content
        (programme_id, b.session(4)),
    ))
    assert answers[0].version == 3 and not answers[0].replayed
    assert answers[1] == dataclasses.replace(original, replayed=True)
    assert not answers[2].replayed and answers[3].replayed
    assert answers[3].recorded == answers[2].recorded
    assert isinstance(answers[4], errors.EventIdConflict)
    assert answers[5].version == 4
    assert [e["version"] for e in app.history(CLINIC, programme_id)] == [1, 2, 3, 4]


def test_a_chunk_sent_again_after_new_ones_gets_its_original_receipts_each_time():
    app = application()
    programmes = [uuid.uuid4() for _ in range(3)]
    chunk = posts_of(*[(p, b.started()) for p in programmes],
                     *[(p, b.session(1)) for p in programmes])
    first = app.record_posts(CLINIC, chunk)
    assert all(isinstance(a, Receipt) and not a.replayed for a in first)
    for _ in range(3):  # right after new events, then after repeats
        again = app.record_posts(CLINIC, chunk)
        assert again == [dataclasses.replace(a, replayed=True) for a in first]
        fresh = app.record_posts(CLINIC, posts_of(*[(p, b.missed(2)) for p in programmes]))
        assert all(isinstance(a, Receipt) and not a.replayed for a in fresh)
    assert [app.programme(CLINIC, p).version for p in programmes] == [5, 5, 5]


def test_repeats_to_a_programme_stored_under_an_alias_are_answered_with_the_clinics_id():
    app = application()
    shared = uuid.uuid4()
    post(app, shared, b.started(), clinic=OTHER_CLINIC)  # the other clinic's, first
    chunk = posts_of((shared, b.started()), (shared, b.session(1)))
    first = app.record_posts(CLINIC, chunk)  # stored under an alias of the clinic's id
    assert [(a.programme_id, a.version, a.replayed) for a in first] == [
        (shared, 1, False), (shared, 2, False)]
    for _ in range(2):  # right after new events (no look-up first), then after repeats
        again = app.record_posts(CLINIC, chunk)
        assert again == [dataclasses.replace(a, replayed=True) for a in first]
    assert app.programme(CLINIC, shared).version == 2
    assert app.programme(OTHER_CLINIC, shared).version == 1


def test_a_programme_another_clinic_starts_after_it_was_resolved_goes_under_an_alias(
        monkeypatch):
    """Resolved as nobody's, started by another clinic before its lock is taken: asked
    again under the lock, left for later, recorded under the clinic's alias; the
    programmes resolved as the clinic's own are run as they were."""
    app = application()
    own = started(app)
    contested = uuid.uuid4()
    resolve = app._resolve
    meanwhile = [(contested, b.started())]

    def resolve_then_another_clinic_starts(clinic_id, programme_ids):
        resolved = resolve(clinic_id, programme_ids)
        while meanwhile:
            post(app, *meanwhile.pop(), clinic=OTHER_CLINIC)
        return resolved

    monkeypatch.setattr(app, "_resolve", resolve_then_another_clinic_starts)
    answers = app.record_posts(CLINIC, posts_of(
        (contested, b.started()), (own, b.session(1)), (contested, b.session(1))))
    monkeypatch.undo()
    assert [(a.programme_id, a.version, a.replayed) for a in answers] == [
        (contested, 1, False), (own, 2, False), (contested, 2, False)]
    assert app.stored_ids(CLINIC, [contested])[contested] != contested
    assert app.programme(CLINIC, contested).version == 2
    assert app.programme(OTHER_CLINIC, contested).version == 1
    assert app.programme(CLINIC, own).version == 2
