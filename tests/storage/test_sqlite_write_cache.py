"""The SQLite recorder's page cache while it writes (service/storage/sqlite.py):
larger for the write of a large group only, then back to the connection's own;
a small group's write leaves it as it is."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from domain.ledger import LedgerEntry, Save
from service.storage.sqlite import WRITE_CACHE_FROM, WRITE_CACHE_KIB, write_cache
from tests.stores import initialise, programmes_at


def cache_size(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        return int(cursor.fetchone()[0])


def test_the_cache_is_larger_while_writing_then_as_it_was(tmp_path):
    datastore = SQLiteDatastore(str(tmp_path / "db.sqlite"))
    try:
        with datastore.get_connection(commit=True) as conn:
            before = cache_size(conn)
            with write_cache(conn, WRITE_CACHE_FROM):
                assert cache_size(conn) == -WRITE_CACHE_KIB
            assert cache_size(conn) == before
            with write_cache(conn, WRITE_CACHE_FROM - 1):
                assert cache_size(conn) == before
            with pytest.raises(RuntimeError), write_cache(conn, WRITE_CACHE_FROM):
                raise RuntimeError("a failed write")
            assert cache_size(conn) == before
    finally:
        datastore.close()


def test_a_recorders_connections_keep_their_own_cache_after_saves(sqlite_url):
    initialise(sqlite_url)
    app = programmes_at(sqlite_url)
    try:
        recorder = app.recorder
        with recorder.datastore.get_connection(commit=False) as conn:
            before = cache_size(conn)
        saves = [Save([StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                                   topic="tests:Event", state=b'{"n": 1}')],
                      [LedgerEntry(uuid.uuid4(), "clinic-a", "Event", None)])
                 for _ in range(WRITE_CACHE_FROM)]
        outcomes = recorder.record_saves(saves)
        assert all(isinstance(outcome, list) for outcome in outcomes)
        with recorder.datastore.get_connection(commit=False) as conn:
            assert cache_size(conn) == before != -WRITE_CACHE_KIB
    finally:
        app.close()
