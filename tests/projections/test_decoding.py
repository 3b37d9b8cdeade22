"""The projection's own decoding of the log equals the library's, event for event."""

from __future__ import annotations

import dataclasses

from domain import personal
from projections.decoding import ProjectedEvent, decode, decode_rows
from service.storage.sealing import is_sealed
from tests.projections.history import busy_log, save


def test_lean_decoding_equals_the_library_mapper_for_every_event_type(app):
    programmes = app.extensions["traction"].programmes
    log = busy_log()
    head = save(programmes, log)
    notifications = programmes.recorder.select_notifications(start=1, limit=head)
    assert len(notifications) == head
    decoded = decode(programmes.mapper, notifications)
    expected = [programmes.mapper.to_domain_event(n) for n in notifications]
    assert {type(e).__name__ for e in expected} >= {
        "ProgrammeStarted", "SessionCompleted", "PainReported", "EntryCorrected"}
    for record, event, notification in zip(decoded, expected, notifications, strict=True):
        assert record.error is None
        assert (record.position, record.programme, record.type, record.first) == (
            notification.id, event.originator_id.int, type(event).__name__,
            event.originator_version == 1)
        # The projection never opens a personal field: it keeps it sealed, as stored
        # (opened, it is what the mapper gives the aggregate).
        names = personal.PERSONAL_FIELDS.get(type(event).__name__, ())
        assert all(is_sealed(record.event.data[n]) for n in names if n in record.event.data)
        opened = personal.opened(programmes.seal, event.originator_id, event.event_id,
                                 type(event).__name__, record.event.data)
        assert dataclasses.replace(record.event, data=opened) == \
            ProjectedEvent.from_domain_event(event)
    # A rebuild reads plain rows instead of notifications: the same records.
    assert decode_rows(programmes.mapper, programmes.recorder.log_rows(0, head)) == decoded


def test_an_undecodable_event_is_kept_with_its_error_and_the_rest_decode(app):
    programmes = app.extensions["traction"].programmes
    head = save(programmes, busy_log(programmes=2, events=5))
    notifications = list(programmes.recorder.select_notifications(start=1, limit=head))
    notifications[2] = dataclasses.replace(notifications[2], state=b'{"event_id": ')
    notifications[3] = dataclasses.replace(notifications[3], state=b'{"occurred_at": 1}')
    decoded = decode(programmes.mapper, notifications)
    assert [r.event is None for r in decoded] == [i in (2, 3) for i in range(len(decoded))]
    assert "JSONDecodeError" in decoded[2].error and "KeyError" in decoded[3].error
    assert decoded[4].event == ProjectedEvent.from_domain_event(
        programmes.mapper.to_domain_event(notifications[4]))


def test_compressed_stores_are_read_through_the_compressor(tmp_path):
    """With the library's compressor configured the stored states are not JSON:
    the history and the projection's decoding undo it first, as the mapper does."""
    from domain.application import Programmes
    from service.storage.stores import eventsourcing_env
    from tests.stores import initialise, settings_for

    url = f"sqlite:///{tmp_path}/compressed.sqlite"
    initialise(url)
    store = settings_for(url).store
    # Not as the service builds it: with the library's compressor configured.
    programmes = Programmes(env={**eventsourcing_env(store),
                                 "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"})
    try:
        log = busy_log(programmes=3, events=12)
        head = save(programmes, log)
        notifications = programmes.recorder.select_notifications(start=1, limit=head)
        assert not notifications[0].state.startswith(b"{")  # compressed, really
        decoded = decode(programmes.mapper, notifications)
        assert [r.event for r in decoded] == [
            ProjectedEvent.from_domain_event(programmes.mapper.to_domain_event(n))
            for n in notifications]
        first = log.events[0]
        history = programmes.history(first.clinic_id, first.originator_id)
        assert [item["event_id"] for item in history] == [
            str(e.event_id) for e in programmes.events.get(first.originator_id)]
    finally:
        programmes.close()
