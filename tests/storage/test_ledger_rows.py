"""Ledger rows as the recorders insert them (service/storage/ledger.py): each row's
chain hash is `chain.entry_hash` of its entry chained to the one before, which is
what the audit verifies, however the rows were computed."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry, Save
from service.storage import chain
from service.storage.ledger import alias_rows, as_uuid, ledger_rows


def a_save(rng: random.Random) -> Save:
    programmes = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(rng.randint(1, 3))]
    events, entries = [], []
    for programme_id in programmes:
        first = rng.randint(1, 50)
        as_given = rng.choice([programme_id, str(programme_id)])  # the library hands either
        for version in range(first, first + rng.randint(1, 4)):
            state = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
            events.append(StoredEvent(
                originator_id=as_given,
                originator_version=version,
                topic=rng.choice(["domain.programme:Programme.PainReported", "t:É\u2028"]),
                state=state))
            entries.append(LedgerEntry(uuid.UUID(int=rng.getrandbits(128)),
                                       rng.choice(["clinic-a", "clinique-é", "c"]),
                                       "PainReported", rng.choice([None, "ab" * 32])))
    return Save(events, entries)


def test_rows_are_numbered_chained_and_versioned_as_one_entry_at_a_time_would_be() -> None:
    rng = random.Random(5)
    for _ in range(200):
        saves = [a_save(rng) for _ in range(rng.randint(1, 6))]
        first = rng.randint(1, 10**9)
        previous = rng.choice([chain.GENESIS, "f" * 64])
        before = rng.choice([None, datetime.now(UTC) + timedelta(seconds=rng.randint(-5, 5)),
                             datetime(2030, 1, 1, tzinfo=UTC)])
        rows = ledger_rows(saves, first_position=first, previous_hash=previous,
                           previous_recorded_at=before)
        pairs = [(event, entry) for save in saves
                 for event, entry in zip(save.stored_events, save.ledger, strict=True)]
        assert len(rows) == len(pairs)
        assert len({row.recorded_at for row in rows}) == 1
        assert before is None or rows[0].recorded_at >= before
        for offset, (row, (event, entry)) in enumerate(zip(rows, pairs, strict=True)):
            assert row.position == first + offset
            assert row.programme_id == uuid.UUID(str(event.originator_id))
            assert (row.programme_hex, row.event_hex) == (row.programme_id.hex,
                                                          entry.event_id.hex)
            assert (row.version, row.event_id, row.clinic_id, row.event_type,
                    row.content_digest) == (event.originator_version, entry.event_id,
                                            entry.clinic_id, entry.event_type,
                                            entry.content_digest)
            save = next(s for s in saves if any(e is event for e in s.stored_events))
            assert row.saved_version == max(e.originator_version for e in save.stored_events
                                            if str(e.originator_id) == str(event.originator_id))
            assert row.chain_hash == chain.entry_hash(
                previous, position=row.position, programme_id=row.programme_id,
                version=row.version, topic=event.topic, state=event.state,
                event_id=entry.event_id, clinic_id=entry.clinic_id,
                recorded_at=row.recorded_at)
            previous = row.chain_hash


def test_alias_rows_are_every_aliased_entry_of_every_save() -> None:
    """`alias_rows` looks only in the saves that have an alias (Save.has_alias):
    the same rows as looking at every entry."""
    rng = random.Random(7)
    for _ in range(200):
        saves = []
        for _ in range(rng.randint(1, 6)):
            save = a_save(rng)
            entries = [LedgerEntry(entry.event_id, entry.clinic_id, entry.event_type,
                                   entry.content_digest,
                                   rng.choice([None, None, uuid.UUID(int=rng.getrandbits(128))]))
                       for entry in save.ledger]
            saves.append(Save(save.stored_events, entries))
        expected = [(str(as_uuid(stored.originator_id)), entry.clinic_id, str(entry.alias_of))
                    for save in saves
                    for stored, entry in zip(save.stored_events, save.ledger, strict=True)
                    if entry.alias_of is not None]
        assert alias_rows(saves) == expected
        assert [save.has_alias for save in saves] == [
            any(entry.alias_of is not None for entry in save.ledger) for save in saves]
