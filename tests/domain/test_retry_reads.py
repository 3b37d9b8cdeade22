"""A retry answered by the store reads the saves it repeats, not the whole
programme, and answers with their receipts exactly as before: whole saves
(with the events the programme added), from any process, on both stores."""

from __future__ import annotations

import dataclasses
import uuid

from domain.application import Receipt
from tests import builders as b
from tests.stores import initialise, programmes_at

CLINIC = "clinic-a"


def replayed(*receipts: Receipt) -> Receipt:
    """The receipt a retry of these saves' events gets: all their events, in order."""
    return dataclasses.replace(receipts[-1], replayed=True, recorded=[
        item for receipt in receipts for item in receipt.recorded])


def posted_by_another_process(url: str) -> tuple[uuid.UUID, dict, Receipt]:
    """A programme started and given one session by a process that has ended:
    (its id, the session as posted, the session's receipt)."""
    initialise(url)
    app = programmes_at(url)
    try:
        programme_id = uuid.uuid4()
        app.record_events(CLINIC, programme_id, b.event_envelopes(b.started()))
        earlier = b.session(1)
        return programme_id, earlier, app.record_events(CLINIC, programme_id,
                                                        b.event_envelopes(earlier))
    finally:
        app.close()


def test_retries_read_back_whole_saves_however_long_the_programme(store_url):
    app = programmes_at(store_url)
    try:
        programme_id = uuid.uuid4()
        app.record_events(CLINIC, programme_id, b.event_envelopes(b.started()))
        for day in range(1, 21):
            app.record_events(CLINIC, programme_id, b.event_envelopes(b.session(day)))
        batch = [b.session(21), b.pain(4, 21), b.session(22), b.pain(3, 22), b.session(23)]
        five = app.record_events(CLINIC, programme_id, b.event_envelopes(*batch))
        severe = b.adverse("severe", 24)
        paused = app.record_events(CLINIC, programme_id, b.event_envelopes(severe))
        assert [item["type"] for item in paused.recorded] == [
            "AdverseEventReported", "ProgrammePaused"]
        resume = b.resumed(25)
        resumed = app.record_events(CLINIC, programme_id, b.event_envelopes(resume))
        for day in range(26, 36):
            app.record_events(CLINIC, programme_id, b.event_envelopes(b.session(day)))
    finally:
        app.close()

    # Another process: nothing of these posts in its memory, the store answers.
    other = programmes_at(store_url)
    try:
        def retry(*posted):
            return other.record_events(CLINIC, programme_id, b.event_envelopes(*posted))

        assert retry(*batch) == replayed(five)
        assert retry(batch[3]) == replayed(five)  # one event of the save: the whole save
        assert retry(batch[0]) == replayed(five)
        assert retry(severe) == replayed(paused)
        # Events of two saves posted together: both saves, as one receipt.
        assert retry(batch[4], resume) == replayed(five, resumed)
    finally:
        other.close()


def test_a_retry_runs_no_command_and_leaves_the_programme_held(sqlite_url, sqlite_statements):
    """Before, a retry's save was refused by the store, which dropped the programme
    from the process's cache (its commands had run on it), and the programme's
    next post read every one of its events again."""
    programme_id, earlier, original = posted_by_another_process(sqlite_url)

    sent = sqlite_statements
    other = programmes_at(sqlite_url)
    try:
        other.record_events(CLINIC, programme_id, b.event_envelopes(b.session(2)))  # held
        sent.clear()
        again = other.record_events(CLINIC, programme_id, b.event_envelopes(earlier))
        assert again == dataclasses.replace(original, replayed=True)
        assert not [s for s in sent if s.startswith(("INSERT", "BEGIN"))], sent  # no save
        sent.clear()
        other.record_events(CLINIC, programme_id, b.event_envelopes(b.session(3)))
        # All of its events: selected by its id alone, no version bound.
        whole = f"originator_id='{programme_id.hex}'ORDERBY"
        whole_reads = [s for s in sent if whole in s.replace(" ", "")]
        assert whole_reads == [], whole_reads
    finally:
        other.close()


def test_a_programme_read_whole_for_a_retry_is_held_for_the_next_post(sqlite_url,
                                                                       sqlite_statements):
    """A worker's first request to a programme may be a retry: the programme it
    reads whole for it is kept, so its next post reads only what is new."""
    programme_id, earlier, original = posted_by_another_process(sqlite_url)
    other = programmes_at(sqlite_url)
    try:
        again = other.record_events(CLINIC, programme_id, b.event_envelopes(earlier))
        assert again == dataclasses.replace(original, replayed=True)
        sqlite_statements.clear()
        other.record_events(CLINIC, programme_id, b.event_envelopes(b.session(2)))
        whole = f"originator_id='{programme_id.hex}'ORDERBY"
        reads_from_start = [s for s in sqlite_statements
                            if whole in s.replace(" ", "") or "originator_version>0" in
                            s.replace(" ", "")]
        assert reads_from_start == [], reads_from_start
    finally:
        other.close()
