"""The library's SQLite infrastructure, its connections given a statement cache.

eventsourcing 9.5 opens each SQLite connection with `cached_statements=True`,
which the sqlite3 module reads as a number: a cache of ONE prepared
statement. Every statement but the last one run on a connection was parsed
and planned again each time. A single-event post runs six (the programme's
new events; BEGIN; the screen; the ledger's head; two inserts): in one
process on 2026-12-06, preparing them cost more than running them (the
ledger insert 70 µs instead of 22, the screen 62 instead of 15, the head 41
instead of 9), about a tenth of the post's CPU.

`SQLiteFactory` is the library's factory (PERSISTENCE_MODULE names this
class for our stores, service/storage/stores.py), whose datastore opens its
connections as the library does but for the size of that cache, and for the
WAL size at which a commit checkpoints by itself: the backstop of the
background checkpoints (service/storage/sqlite_checkpoints.py), set once as
each connection opens.
"""

from __future__ import annotations

import sqlite3

from eventsourcing import sqlite as library
from eventsourcing.persistence import InterfaceError
from eventsourcing.utils import Environment, EnvType

from service.storage.sqlite_checkpoints import HOLD_BACK

#: Prepared statements kept per connection: the sqlite3 module's own default.
#: Our statements are few; a bulk chunk's screen is made per chunk size, and
#: the least recently used go first.
STATEMENT_CACHE = 128


class StatementCachingPool(library.SQLiteConnectionPool):
    def _create_connection(self) -> library.SQLiteConnection:
        # The library's own, but for `cached_statements` and HOLD_BACK.
        try:
            conn = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: the library issues BEGIN itself
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or library.SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        conn.execute(HOLD_BACK)
        conn.row_factory = sqlite3.Row
        return library.SQLiteConnection(sqlite_conn=conn, max_age=self.max_age)


class SQLiteFactory(library.SQLiteFactory):
    """The library's factory; its datastore's connections cache their statements."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # The library's pool, made by its datastore, has opened no connection yet:
        # ours takes its place with the same settings.
        pool = self.datastore.pool
        self.datastore.pool = StatementCachingPool(
            db_name=pool.db_name, lock_timeout=pool.lock_timeout, pool_size=pool.pool_size,
            max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout,
            max_age=pool.max_age, pre_ping=pool.pre_ping)
        pool.close()
