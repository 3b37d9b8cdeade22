"""Recording realistic histories straight through the Programmes application."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

from domain.application import EventEnvelope
from tests import builders
from tests.stores import programmes_at


def as_envelope(body: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.UUID(body["event_id"]),
        type=body["type"],
        occurred_at=datetime.fromisoformat(body["occurred_at"]),
        recorded_by=body["recorded_by"],
        data=body["data"],
    )


def programme_history(rng: random.Random, length: int) -> list[dict[str, Any]]:
    """A valid history: started, then sessions, misses and pain reports."""
    events = [builders.started()]
    for day in range(1, length):
        roll = rng.random()
        if roll < 0.6:
            events.append(builders.session(days=day))
        elif roll < 0.8:
            events.append(builders.missed(days=day))
        else:
            events.append(builders.pain(rng.randint(0, 10), days=day))
    return events


def record_programmes(
    url: str,
    *,
    clinics: tuple[str, ...] = ("clinic-a", "clinic-b"),
    programmes: int = 4,
    length: int = 8,
    batch: int = 3,
    seed: int = 1,
) -> list[uuid.UUID]:
    """Record `programmes` histories of `length` events, `batch` events per save,
    interleaving programmes so that the global log mixes them."""
    rng = random.Random(seed)
    app = programmes_at(url)
    try:
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(programmes)]
        histories = {pid: programme_history(rng, length) for pid in ids}
        offset = 0
        while offset < length:
            for index, pid in enumerate(ids):
                chunk = histories[pid][offset:offset + batch]
                if chunk:
                    app.record_events(clinics[index % len(clinics)], pid,
                                      [as_envelope(body) for body in chunk])
            offset += batch
        return ids
    finally:
        app.close()


def write_concurrently(url: str, worker: int, programmes: int, length: int,
                       shared_programme: str, shared_sessions: int) -> int:
    """One of several processes writing at once: its own programmes in batches of
    1-4 events, and single sessions on a programme every process writes to.
    Returns how many events it recorded."""
    from domain import errors

    rng = random.Random(worker)
    app = programmes_at(url)
    recorded = 0
    try:
        pending = {
            uuid.UUID(int=rng.getrandbits(128), version=4): programme_history(rng, length)
            for _ in range(programmes)
        }
        shared = uuid.UUID(shared_programme)
        clinic = ("clinic-a", "clinic-b")[worker % 2]
        while any(pending.values()) or shared_sessions:
            for programme_id, events in pending.items():
                if events:
                    size = rng.randint(1, 4)
                    app.record_events(clinic, programme_id,
                                      [as_envelope(body) for body in events[:size]])
                    recorded += len(events[:size])
                    del events[:size]
            if shared_sessions:
                session = as_envelope(builders.session(days=1 + rng.random()))
                while True:
                    try:
                        app.record_events("clinic-a", shared, [session])
                        break
                    except errors.ConcurrentWrite:
                        continue  # every attempt lost a race: try again
                recorded += 1
                shared_sessions -= 1
    finally:
        app.close()
    return recorded
