"""A streaming replica of the store's PostgreSQL server, and which copy answers a read.

With TRACTION_READ_DATABASE_URL set, the reads that need not see a write
the moment it commits are asked of the replica: dashboards, summaries and
programme lists (projections/reading.py), a programme's history, the global
log and the access log. Writes, and every read a write depends on (the
programme a command runs on, tokens, idempotent retries), stay on the
primary. What each read promises from a replica (README, "Reads from a
replica"):

- a projection read with `?min_position=P` waits for the replica's copy to
  reach P, then answers 503 as on the primary: never older than asked;
- a programme's history is served by the replica only if it holds the
  programme's latest version on the primary (one index lookup there), so it
  is as current as from the primary: a client reads its own writes;
- the global log and the access log are pages of append-only logs: the
  replica's page ends where its copy ends, and the next page goes on from it.

A replica that cannot be reached is not an outage: its reads go to the
primary (which holds the same data, or newer) until a probe in the
background reaches the replica again. A failed read costs at most
CONNECT_TIMEOUT once per worker; the reads after it do not try the replica.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper, Notification
from psycopg_pool import PoolTimeout

from domain import errors
from domain.application import Programmes
from domain.ledger import HistoryEntry
from service.storage.database import Database
from service.storage.postgres import LEDGER_TABLE, ReadQueries
from service.storage.stored import history_entries
from service.storage.stores import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long a read waits for a connection to the replica before it goes to the primary.
CONNECT_TIMEOUT = 1.0
#: How often a worker tries the replica again while it cannot be reached.
PROBE_SECONDS = 1.0
#: Errors of a replica that is not there (no sqlstate: the connection itself
#: failed; class 08: connection exception; 57P01-57P03: shutting down, crashed,
#: still starting up).
UNREACHABLE_STATES = ("57P01", "57P02", "57P03")


class ReplicaBehind(Exception):
    """The replica does not yet hold what this read must show: ask the primary."""


class ReplicaMisconfigured(Exception):
    """TRACTION_READ_DATABASE_URL names a database that cannot be this store's replica."""


def unreachable(error: BaseException) -> bool:
    """Whether an error of the replica means it cannot be reached (not just this query)."""
    if isinstance(error, PoolTimeout):
        return True
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith("08") or state in UNREACHABLE_STATES


@dataclass(frozen=True)
class ReplicaStatus:
    """Where the replica stands (for /readyz and the metrics)."""

    state: str  # "streaming", "unreachable", or "primary" (the URL is the primary itself)
    serving_reads: bool
    head: int | None = None  # the last position it has replayed
    lag_events: int | None = None
    lag_seconds: float | None = None  # how long ago the oldest event it lacks was recorded
    lag_bytes: int | None = None  # WAL not yet replayed: events, read models, everything

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "serving_reads": self.serving_reads, "head": self.head,
                "lag_events": self.lag_events, "lag_seconds": self.lag_seconds,
                "lag_bytes": self.lag_bytes}


class Replica:
    """The replica's connections, whether it can be used, and its queries of the log."""

    def __init__(self, database: Database, primary: Database, *, events_table: str) -> None:
        """`database`: connections to the replica (CONNECT_TIMEOUT to get one);
        `primary`: to the primary's service tables (for the lag)."""
        self.store = database.store
        self.database = database
        self.primary = primary
        self.reads = ReadQueries(self.store.pg_schema, events_table)
        #: Told of every routed read: ("replica", "") or ("primary", why).
        self.listeners: list[Callable[[str, str], None]] = []
        self._lock = threading.Lock()
        self._down = False
        self._closed = threading.Event()

    # ---- which copy answers ----------------------------------------------

    @property
    def usable(self) -> bool:
        return not self._down

    def read(self, on_replica: Callable[[], T], on_primary: Callable[[], T]) -> T:
        """`on_replica()`, unless the replica cannot answer it: then `on_primary()`.

        Errors of `on_replica` other than the replica's own (a 404, a
        projection behind min_position) are the answer, and propagate."""
        reason = "down"
        if not self._down:
            try:
                answer = on_replica()
            except ReplicaBehind:
                reason = "behind"
            except (psycopg.Error, PoolTimeout) as error:
                reason = self._failed(error)
            else:
                self._tell("replica", "")
                return answer
        self._tell("primary", reason)
        return on_primary()

    def _tell(self, served_by: str, reason: str) -> None:
        for listener in self.listeners:
            try:
                listener(served_by, reason)
            except Exception:  # a metric never fails a read
                log.exception("a replica listener failed")

    def _failed(self, error: BaseException) -> str:
        if not unreachable(error):
            # E.g. a query the standby cancelled to replay the primary's changes.
            log.warning("the read replica could not answer (%s: %s); this read goes to the "
                        "primary", type(error).__name__, str(error).strip()[:200])
            return "error"
        with self._lock:
            if self._down:
                return "down"
            self._down = True
        log.warning("the read replica cannot be reached (%s); reads go to the primary until it "
                    "answers again", type(error).__name__)
        threading.Thread(target=self._probe, name="replica-probe", daemon=True).start()
        return "down"

    def _probe(self) -> None:
        """Try the replica every PROBE_SECONDS until it answers (in the background:
        no read waits for it)."""
        while not self._closed.wait(PROBE_SECONDS):
            try:
                with psycopg.connect(self.store.conninfo(), connect_timeout=2,
                                     autocommit=True) as connection:
                    connection.execute("SELECT 1")
            except psycopg.Error:
                continue
            with self._lock:
                self._down = False
            log.warning("the read replica answers again; reads go to it")
            return

    # ---- the log, as the replica holds it ----------------------------------

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]:
        """A programme's history from the replica (domain.ledger.Ledger.history)."""
        with self.database.transaction(write=False) as cursor:
            return history_entries(mapper, self.reads.history_rows(cursor.raw, programme_id))

    def select_notifications(self, start: int, limit: int) -> list[Notification]:
        """The log from position `start`, at most `limit` events (as the recorder's)."""
        with self.database.transaction(write=False) as cursor:
            return self.reads.notifications(cursor.raw, start, limit)

    def ledger_window(self, first: int, last: int) -> list[dict[str, Any]]:
        with self.database.transaction(write=False) as cursor:
            return self.reads.ledger_window_rows(cursor.raw, first, last)

    # ---- where it stands ---------------------------------------------------

    def status(self) -> ReplicaStatus:
        """The replica's head and how far it is behind the primary (raises if the
        primary cannot be read; an unreachable replica is a status)."""
        with self.primary.transaction(write=False) as cursor:
            primary_head = self.reads.head(cursor.raw)
            primary_lsn = cursor.execute("SELECT pg_current_wal_lsn()::text AS lsn"
                                         ).fetchone()
        try:
            with self.database.transaction(write=False) as cursor:
                head = self.reads.head(cursor.raw)
                replayed = cursor.execute(
                    "SELECT pg_is_in_recovery() AS standby, "
                    "pg_last_wal_replay_lsn()::text AS lsn").fetchone()
        except (psycopg.Error, PoolTimeout) as error:
            if unreachable(error):
                self._failed(error)
            return ReplicaStatus("unreachable", serving_reads=False)
        assert replayed is not None and primary_lsn is not None
        position = head["position"] if head else 0
        primary_position = primary_head["position"] if primary_head else 0
        lag_events = max(primary_position - position, 0)
        lag_seconds, lag_bytes = 0.0, 0
        with self.primary.transaction(write=False) as cursor:
            if lag_events:
                row = cursor.execute(f"SELECT recorded_at FROM {LEDGER_TABLE} "
                                     "WHERE position = %s", [position + 1]).fetchone()
                if row is not None:
                    lag_seconds = max((datetime.now(UTC) - row["recorded_at"]).total_seconds(),
                                      0.0)
            if replayed["standby"] and replayed["lsn"]:
                row = cursor.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn) AS lag",
                                     [primary_lsn["lsn"], replayed["lsn"]]).fetchone()
                lag_bytes = max(int(row["lag"]), 0) if row else 0
        return ReplicaStatus("streaming" if replayed["standby"] else "primary",
                             serving_reads=self.usable, head=position, lag_events=lag_events,
                             lag_seconds=round(lag_seconds, 3), lag_bytes=lag_bytes)

    def close(self) -> None:
        """Stop probing (the connections belong to the composition root)."""
        self._closed.set()


def read_history(programmes: Programmes, replica: Replica | None, clinic_id: str,
                 programme_id: UUID, *, clinic_positions: bool = True
                 ) -> list[dict[str, Any]]:
    """A programme's history, from the replica when it already holds the
    programme's latest version on the primary (one index lookup there), else
    from the primary: as current either way, so a client reads its own writes."""
    if replica is None:
        return programmes.history(clinic_id, programme_id, clinic_positions=clinic_positions)

    def on_replica() -> list[dict[str, Any]]:
        head = programmes.recorder.programme_head(programme_id)  # type: ignore[attr-defined]
        if head is None or head[1] != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        try:
            items = programmes.history(clinic_id, programme_id, ledger=replica,
                                       clinic_positions=clinic_positions)
        except errors.ProgrammeNotFound:
            raise ReplicaBehind from None  # not replayed there yet
        if items[-1]["version"] < head[0]:
            raise ReplicaBehind
        return items

    return replica.read(on_replica, lambda: programmes.history(
        clinic_id, programme_id, clinic_positions=clinic_positions))


def check_replica(replica: Store, primary: Store) -> str | None:
    """At start-up: None if `replica` serves this store's reads, a warning if it
    cannot be reached now (reads then go to the primary until it can), and
    ReplicaMisconfigured if it can never be this store's replica."""
    where = f"{replica.pg_host}:{replica.pg_port}/{replica.pg_dbname}"
    try:
        connection = psycopg.connect(replica.conninfo(), connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        message = str(error).strip()
        if "authentication failed" in message or "does not exist" in message:
            raise ReplicaMisconfigured(
                f"TRACTION_READ_DATABASE_URL: the read replica at {where} refuses this "
                f"service: {message.splitlines()[-1]}") from None
        return (f"the read replica at {where} cannot be reached now ({message.splitlines()[0]}); "
                "reads go to the primary until it can")
    with connection, psycopg.connect(primary.conninfo(), connect_timeout=5,
                                     autocommit=True) as on_primary:
        identity = "SELECT system_identifier::text FROM pg_control_system()"
        ours = on_primary.execute(identity).fetchone()
        theirs = connection.execute(identity).fetchone()
        if ours != theirs:
            raise ReplicaMisconfigured(
                f"TRACTION_READ_DATABASE_URL: {where} is not a replica of the store's "
                "PostgreSQL server (TRACTION_DATABASE_URL): it is another cluster (system "
                f"identifier {theirs[0] if theirs else '?'}, the store's is "
                f"{ours[0] if ours else '?'})")
        table = connection.execute("SELECT to_regclass(%s) IS NOT NULL",
                                   [f'"{replica.pg_schema}".{LEDGER_TABLE}']).fetchone()
        if not table or not table[0]:
            raise ReplicaMisconfigured(
                f"TRACTION_READ_DATABASE_URL: {where} has no Traction Ledger tables in schema "
                f"{replica.pg_schema!r}: name the store's database on the replica")
        standby = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    if not standby or not standby[0]:
        return (f"TRACTION_READ_DATABASE_URL names the primary itself ({where}): reads gain "
                "nothing from it")
    return None
