"""Worker processes for the concurrency tests (importable by spawned processes)."""

from __future__ import annotations

import random
import uuid

from domain import errors
from domain.application import EventEnvelope
from service.http.schemas.events import EventPostSchema
from tests import builders as b
from tests.stores import programmes_at


def envelope(raw: dict) -> EventEnvelope:
    loaded = EventPostSchema().load(raw)["events"][0]
    return EventEnvelope(**loaded)


def post_sessions(url: str, programme_id: str, count: int, seed: int,
                  use_expected_version: bool) -> list[str]:
    """Post `count` sessions, one per call, retrying conflicts; return their event ids."""
    app = programmes_at(url)
    rng = random.Random(seed)
    pid = uuid.UUID(programme_id)
    posted = []
    try:
        for i in range(count):
            event = envelope(b.session(1 + i / 1000 + rng.random() / 1000))
            while True:
                expected = None
                if use_expected_version:
                    expected = app.programme("clinic-a", pid).version
                try:
                    app.record_events("clinic-a", pid, [event], expected)
                    break
                except (errors.VersionConflict, errors.ConcurrentWrite):
                    continue  # someone else got there first: re-read and retry
            posted.append(str(event.event_id))
    finally:
        app.close()
    return posted


def post_same_event(url: str, programme_id: str, raw: dict) -> str:
    """Post one given event; return 'recorded' or 'replayed'."""
    app = programmes_at(url)
    try:
        while True:
            try:
                receipt = app.record_events("clinic-a", uuid.UUID(programme_id),
                                            [envelope(raw)])
                return "replayed" if receipt.replayed else "recorded"
            except errors.ConcurrentWrite:
                continue
    finally:
        app.close()
