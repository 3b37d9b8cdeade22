"""Our SQLite store's connections (service/storage/sqlite_connections.py): opened
as the library opens them, but each keeping STATEMENT_CACHE prepared statements
instead of the library's one."""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import InfrastructureFactory

from service.storage import sqlite_connections
from service.storage.sqlite_connections import STATEMENT_CACHE, StatementCachingPool
from service.storage.stores import eventsourcing_env, parse_database_url
from tests.stores import initialise, programmes_at


def test_a_store_opens_its_connections_with_a_statement_cache(sqlite_url, monkeypatch):
    initialise(sqlite_url)
    opened: list[dict] = []
    connect = sqlite3.connect

    def recording_connect(*args, **kwargs):
        opened.append(kwargs)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite_connections.sqlite3, "connect", recording_connect)
    app = programmes_at(sqlite_url)
    try:
        pool = app.recorder.datastore.pool
        assert isinstance(pool, StatementCachingPool)
        with app.recorder.datastore.get_connection(commit=False) as conn, conn.cursor() as c:
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal"
            # Rows by name, as the library's connections give them.
            c.execute("SELECT 1 AS one")
            assert c.fetchone()["one"] == 1
        # (The service's other connections, its directory's, are opened elsewhere.)
        pooled = [kwargs for kwargs in opened if "cached_statements" in kwargs]
        assert pooled and all(kwargs["cached_statements"] == STATEMENT_CACHE
                              for kwargs in pooled)
        # The library reads `cached_statements=True` as a cache of one statement.
        assert STATEMENT_CACHE > 1
    finally:
        app.close()


def test_the_pool_keeps_the_librarys_settings(sqlite_url):
    initialise(sqlite_url)
    env = eventsourcing_env(parse_database_url(sqlite_url))
    factory = InfrastructureFactory.construct(env)
    try:
        pool = factory.datastore.pool
        assert isinstance(pool, StatementCachingPool)
        assert pool.db_name == env["SQLITE_DBNAME"]
        assert pool.lock_timeout == int(env["SQLITE_LOCK_TIMEOUT"])
    finally:
        factory.close()
