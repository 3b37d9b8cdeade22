"""Which store, and how to use it: a parsed database URL and the library's settings for it.

This is the only place that knows the eventsourcing library's environment
variable names: everything else passes a `Store` around. It reads no
environment of its own: the operator's settings (pool sizes, timeouts) come
in as `StoreOptions`, read and checked once by service/config.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

#: How long a PostgreSQL pool keeps retrying one lost connection before it gives
#: up and lets the next request open a fresh one. psycopg_pool doubles the wait
#: between tries (1, 2, 4, 8 s...) up to this; at its default (5 minutes, which
#: the library keeps) the store could be back for many seconds after a long
#: outage before a pool tried again, every request meanwhile a 503.
RECONNECT_TIMEOUT = 2.0


class DatabaseUrlError(ValueError):
    """A database URL this service cannot use."""


@dataclass(frozen=True)
class StoreOptions:
    """How the service uses its store (README, "Configuration")."""

    #: PostgreSQL connections per process for the event store, and how many more at peaks.
    pg_pool_size: int = 4
    pg_max_overflow: int = 4
    #: Seconds a request waits for a pooled PostgreSQL connection (the library tries 10 times).
    pg_connect_timeout: int = 1
    #: Seconds a write waits for the event table's lock.
    pg_lock_timeout: int = 10
    #: Seconds a SQLite write waits for the file's lock.
    sqlite_lock_timeout: int = 30
    #: Programmes kept in memory per process (always fast-forwarded from the store).
    aggregate_cache_size: int = 1000


@dataclass(frozen=True)
class Store:
    """A parsed database URL, with the options to use it."""

    url: str
    kind: str  # "sqlite" or "postgresql"
    sqlite_path: Path | None = None
    pg_host: str = ""
    pg_port: int = 5432
    pg_user: str = ""
    pg_password: str = field(default="", repr=False)
    pg_dbname: str = ""
    pg_schema: str = "public"
    options: StoreOptions = field(default_factory=StoreOptions)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    def describe(self) -> str:
        """Where the store is, for messages: a SQLite file's absolute path; a PostgreSQL
        URL without its password."""
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path.absolute()}"
        schema = f"?schema={self.pg_schema}" if self.pg_schema != "public" else ""
        return f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_dbname}{schema}"

    def conninfo(self) -> str:
        """A libpq connection string (PostgreSQL only)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.pg_host, port=self.pg_port, user=self.pg_user,
            password=self.pg_password or None, dbname=self.pg_dbname,
        )


def parse_database_url(url: str, options: StoreOptions | None = None) -> Store:
    """Parse `sqlite:///relative/path`, `sqlite:////absolute/path` or
    `postgresql://user:password@host:port/dbname[?schema=name]`."""
    options = options or StoreOptions()
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise DatabaseUrlError(
                "a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path"
            )
        return Store(url=url, kind="sqlite", sqlite_path=Path(unquote(parts.path[1:])),
                     options=options)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        try:
            hostname, port = parts.hostname, parts.port
        except ValueError:  # a port that is not a number
            raise DatabaseUrlError("the port of a PostgreSQL URL must be a number") from None
        if not hostname or not dbname:
            raise DatabaseUrlError(
                "a PostgreSQL URL is postgresql://user:password@host:port/dbname"
            )
        schema = parse_qs(parts.query).get("schema", ["public"])[0]
        return Store(
            url=url,
            kind="postgresql",
            pg_host=hostname,
            pg_port=port or 5432,
            pg_user=unquote(parts.username or "postgres"),
            pg_password=unquote(parts.password or ""),
            pg_dbname=dbname,
            pg_schema=schema,
            options=options,
        )
    raise DatabaseUrlError(
        f"unsupported database URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://"
    )


def create_sqlite_file(path: Path) -> None:
    """The store's file and its folder, the file readable by its owner alone
    (0600): it holds every patient's record. SQLite gives the -wal and -shm
    files beside it the same mode. An existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def eventsourcing_env(store: Store) -> dict[str, str]:
    """The eventsourcing library's settings for this store."""
    options = store.options
    env = {
        # Every table, the library's included, is created and changed by the
        # migrations (service/storage/migrations), once, never by workers.
        "CREATE_TABLE": "n",
        # Programmes are replayed often (every command); keep recent ones in
        # memory and fast-forward them from the store, which stays the truth.
        "AGGREGATE_CACHE_MAXSIZE": str(options.aggregate_cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        # The library's stored format, written by orjson (service/storage/transcoding.py).
        "TRANSCODER_TOPIC": "service.storage.transcoding:OrjsonTranscoder",
    }
    if store.kind == "sqlite":
        assert store.sqlite_path is not None
        create_sqlite_file(store.sqlite_path)
        env.update(
            {
                # The library's, with a statement cache (service/storage/sqlite_connections.py).
                "PERSISTENCE_MODULE": "service.storage.sqlite_connections:SQLiteFactory",
                "SQLITE_DBNAME": str(store.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(options.sqlite_lock_timeout),
                "APPLICATION_RECORDER_TOPIC": "service.storage.sqlite:LedgerSQLiteRecorder",
            }
        )
    else:
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": store.pg_dbname,
                "POSTGRES_HOST": store.pg_host,
                "POSTGRES_PORT": str(store.pg_port),
                "POSTGRES_USER": store.pg_user,
                "POSTGRES_PASSWORD": store.pg_password,
                "POSTGRES_SCHEMA": store.pg_schema,
                "POSTGRES_POOL_SIZE": str(options.pg_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(options.pg_max_overflow),
                # How long a request waits for a pooled connection. With the
                # default sizes there is one for every request thread, so the
                # wait only bites while PostgreSQL is down, where the library
                # tries 10 times, 0.2 s apart: about 12 s, then a 503.
                "POSTGRES_CONNECT_TIMEOUT": str(options.pg_connect_timeout),
                "POSTGRES_LOCK_TIMEOUT": str(options.pg_lock_timeout),
                # No ping before each checkout (a round trip per read): a dead
                # connection fails its query, which the library retries on a
                # fresh one, and the pool discards the broken connection.
                "POSTGRES_PRE_PING": "n",
                # Never the database functions: they skip the table lock and
                # would let readers of the log miss events.
                "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
                "APPLICATION_RECORDER_TOPIC": "service.storage.postgres:LedgerPostgresRecorder",
            }
        )
    return env
