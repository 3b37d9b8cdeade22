"""Where the read models live: versioned tables beside the event store.

Each projection's read models are tables suffixed with a version number
(`programme_summaries_v3`, `clinic_dashboards_v3`, `network_view_v3`); the
`projection_versions` table says which version is live (and which one a
rebuild is building). A version's tracking position is the library's
tracking record named `<projection>.v<version>`.

Exactly once: every write — a batch's rows, its parked events and its
tracking position — is one transaction (`write`), on the library's own
tracking recorders (subclassed here, one per store), using their
`_insert_tracking` inside our transaction. The library's single-row tracking
insert refuses a position that does not advance, so a batch can never be
counted twice; a crash before the commit leaves neither rows nor position.
Before writing, the transaction checks that the version it writes is still
the one expected (live, or being built), so a runner can never write into a
version that a rebuild has just retired.

The shared tables and version 1 come with the store (its migrations,
service/storage/migrations); a rebuild creates each later version. Each
version records the state format it was built in (`read_model_formats`):
a release with another format rebuilds, never writes into, an older one.

SQL is written once with `%s` placeholders; SQLite gets `?`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections import dashboards
from projections.engine import Changes
from projections.network import NETWORK_ROW
from projections.summaries import STATE_FORMAT
from service.storage.database import Database
from service.storage.postgres import retry_read
from service.storage.sqlite_lock import write_lock

#: The projections and their read models (tables, without the version suffix).
PROJECTIONS = {"dashboards": ("programme_summaries", "clinic_dashboards", "network_view")}
DEFAULT_PROJECTION = "dashboards"

VERSIONS = "projection_versions"
#: The state format each version was built in (service/storage/migrations 0002).
FORMATS = "read_model_formats"
PARKED = "projection_parked"
#: The library's tracking table on PostgreSQL (on SQLite it is always "tracking").
POSTGRES_TRACKING = "projection_tracking"
LEDGER = "event_ledger"

_JSON = json.JSONEncoder(separators=(",", ":"))
#: Rendered bodies keep their fields in the order they are written.
to_json = _JSON.encode
#: States and totals are written canonically, so that the same content is the
#: same bytes whatever order it was built in (a digest compares them).
canonical_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


#: Called inside a write transaction with its cursor; raises if the writer may not write.
Fence = Callable[[Any], None]


class Marker(NamedTuple):
    """What changes whenever a row of a projection's live version does."""

    version: int
    position: int
    parked: int
    skipped: int


class VersionRetired(Exception):
    """The version being written is no longer the live (or building) one."""


class UnknownProjection(ValueError):
    pass


def tracking_key(name: str, version: int) -> str:
    return f"{name}.v{version}"


def check_name(name: str) -> str:
    if name not in PROJECTIONS:
        raise UnknownProjection(
            f"no projection named {name!r} (known: {', '.join(sorted(PROJECTIONS))})"
        )
    return name


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class ReadModelStore:
    """The read models' SQL, shared by both stores (see the subclasses below)."""

    postgres = False
    tracking_table = "tracking"

    # ---- provided by each store -----------------------------------------

    def table(self, name: str) -> str:
        raise NotImplementedError

    def writing(self) -> Any:
        """A write transaction (serialized with every other writer of the projections)."""
        raise NotImplementedError

    def reading(self) -> Any:
        """A read-only transaction that sees one snapshot."""
        raise NotImplementedError

    # The library's tracking recorder (the second base of each subclass)
    # provides max_tracking_id() and _insert_tracking().
    _insert_tracking: Any
    max_tracking_id: Any

    # ---- SQL helpers ----------------------------------------------------

    def sql(self, statement: str) -> str:
        return statement if self.postgres else statement.replace("%s", "?")

    def execute(self, c: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        c.execute(self.sql(statement), tuple(params))
        return c

    def executemany(self, c: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            c.executemany(self.sql(statement), rows)

    def version_table(self, base: str, version: int) -> str:
        return self.table(f"{base}_v{version}")

    # ---- tables -----------------------------------------------------------

    def _create_version_tables(self, c: Any, version: int, *, indexes: bool) -> None:
        summaries = self.version_table("programme_summaries", version)
        self.execute(c, f"CREATE TABLE IF NOT EXISTS {summaries} ("
                     "programme_id TEXT PRIMARY KEY, clinic_id TEXT NOT NULL, "
                     "status TEXT NOT NULL, started_us BIGINT NOT NULL, "
                     "position BIGINT NOT NULL, summary TEXT NOT NULL, state TEXT NOT NULL)")
        self.execute(c, f"CREATE TABLE IF NOT EXISTS "
                     f"{self.version_table('clinic_dashboards', version)} ("
                     "clinic_id TEXT PRIMARY KEY, totals TEXT NOT NULL, dashboard TEXT NOT NULL)")
        self.execute(c, f"CREATE TABLE IF NOT EXISTS "
                     f"{self.version_table('network_view', version)} ("
                     "row_id INTEGER PRIMARY KEY, totals TEXT NOT NULL, dashboard TEXT NOT NULL)")
        if indexes:
            self._create_indexes(c, version)

    def _create_indexes(self, c: Any, version: int) -> None:
        # Keyset pagination of a clinic's summaries, newest first, with and
        # without a status filter.
        summaries = self.version_table("programme_summaries", version)
        self.execute(c, f"CREATE INDEX IF NOT EXISTS programme_summaries_v{version}_clinic "
                     f"ON {summaries} (clinic_id, started_us, programme_id)")
        self.execute(c, f"CREATE INDEX IF NOT EXISTS programme_summaries_v{version}_status "
                     f"ON {summaries} (clinic_id, status, started_us, programme_id)")

    def _drop_version_tables(self, c: Any, name: str, version: int) -> None:
        for base in PROJECTIONS[name]:
            self.execute(c, f"DROP TABLE IF EXISTS {self.version_table(base, version)}")
        self.execute(c, f"DELETE FROM {self.table(PARKED)} WHERE projection = %s "
                     "AND version = %s", [name, version])
        self.execute(c, f"DELETE FROM {self.table(self.tracking_table)} "
                     "WHERE application_name = %s", [tracking_key(name, version)])
        self.execute(c, f"DELETE FROM {self.table(FORMATS)} WHERE projection = %s "
                     "AND version = %s", [name, version])

    # ---- versions -------------------------------------------------------

    def _versions(self, c: Any, name: str, lock: str = "") -> tuple[int, int | None]:
        self.execute(c, f"SELECT live_version, building_version FROM {self.table(VERSIONS)} "
                     f"WHERE projection = %s{lock}", [name])
        row = c.fetchone()
        if row is None:
            raise UnknownProjection(f"projection {name!r} has no tables: run `traction db init`")
        return row["live_version"], row["building_version"]

    def versions(self, name: str) -> tuple[int, int | None]:
        """(live version, version being built or None)."""
        with self.reading() as c:
            return self._versions(c, name)

    def adopt_format(self, name: str, version: int) -> bool:
        """Record this release's state format for a version nothing was applied to yet
        (a new store's first version): True if it now has it, False if it holds states."""
        if self.max_tracking_id(tracking_key(name, version)):
            return False
        with self.writing() as c:
            self.execute(c, f"DELETE FROM {self.table(FORMATS)} WHERE projection = %s "
                         "AND version = %s", [name, version])
            self.execute(c, f"INSERT INTO {self.table(FORMATS)} (projection, version, "
                         "state_format) VALUES (%s, %s, %s)", [name, version, STATE_FORMAT])
        return True

    def state_format(self, name: str, version: int) -> int:
        """The state format a version was built in (1: built by release 0.1.0)."""
        with self.reading() as c:
            self.execute(c, f"SELECT state_format FROM {self.table(FORMATS)} "
                         "WHERE projection = %s AND version = %s", [name, version])
            row = c.fetchone()
        return int(row["state_format"]) if row else 1

    def settle_writers(self, name: str) -> None:
        """Wait until no write to the projection is in flight.

        A runner that has just taken the runner lock calls this before it reads
        its position: the runner that held the lock before may be committing a
        batch this very moment (its lock session ended under it). Each write
        holds the versions row FOR SHARE (write_in), so FOR UPDATE waits for it.
        """
        with self.writing() as c:
            self._versions(c, name, " FOR UPDATE" if self.postgres else "")

    def position(self, name: str, version: int) -> int:
        return self.max_tracking_id(tracking_key(name, version)) or 0

    def begin_build(self, name: str) -> tuple[int, int]:
        """Start building a new version beside the live one: (live, new).

        A version left half-built by an interrupted rebuild is dropped: a
        rebuild always starts from position 0 with the code that runs it.
        """
        with self.writing() as c:
            live, building = self._versions(c, name)
            if building is not None:
                self._drop_version_tables(c, name, building)
            new = max(live, building or 0) + 1
            self._drop_version_tables(c, name, new)
            # Secondary indexes come at the end of the build (cheaper in bulk).
            self._create_version_tables(c, new, indexes=False)
            self.execute(c, f"INSERT INTO {self.table(FORMATS)} (projection, version, "
                         "state_format) VALUES (%s, %s, %s)", [name, new, STATE_FORMAT])
            self.execute(c, f"UPDATE {self.table(VERSIONS)} SET building_version = %s "
                         "WHERE projection = %s", [new, name])
        return live, new

    def finish_build(self, version: int) -> None:
        with self.writing() as c:
            self._create_indexes(c, version)

    @contextmanager
    def swapping(self, name: str, version: int) -> Iterator[Any]:
        """A transaction that makes `version` live when it commits.

        It locks the versions row first, so the runner's next write waits for
        it and then sees the swap; inside it the caller writes the last events
        into the new version, so the swap happens at a position no lower than
        the one readers saw before it.
        """
        with self.writing() as c:
            lock = " FOR UPDATE" if self.postgres else ""
            live, building = self._versions(c, name, lock)
            if building != version:
                raise VersionRetired(f"{name} v{version} is no longer being built")
            yield c
            self.execute(c, f"UPDATE {self.table(VERSIONS)} SET live_version = %s, "
                         "building_version = NULL, swapped_at = %s WHERE projection = %s",
                         [version, now_iso(), name])

    def drop_version(self, name: str, version: int) -> None:
        with self.writing() as c:
            live, building = self._versions(c, name)
            if version in (live, building):
                raise ValueError(f"{name} v{version} is in use")
            self._drop_version_tables(c, name, version)

    def abandon_build(self, name: str, version: int) -> None:
        """Drop a version whose build failed (the live one is untouched)."""
        with self.writing() as c:
            live, building = self._versions(c, name)
            if building == version:
                self.execute(c, f"UPDATE {self.table(VERSIONS)} SET building_version = NULL "
                             "WHERE projection = %s", [name])
            if version != live:
                self._drop_version_tables(c, name, version)

    # ---- the engine's loaders -------------------------------------------

    def load_states(self, version: int, programmes: Sequence[int]) -> dict[int, Any]:
        """Stored states by programme (a programme's UUID as an int)."""
        table = self.version_table("programme_summaries", version)
        keys = {str(UUID(int=programme)): programme for programme in programmes}
        ids = list(keys)
        states: dict[int, Any] = {}
        loads = json.loads
        with self.reading() as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                if self.postgres:
                    self.execute(c, f"SELECT programme_id, state FROM {table} "
                                 "WHERE programme_id = ANY(%s)", [chunk])
                else:
                    marks = ",".join("?" * len(chunk))
                    c.execute(f"SELECT programme_id, state FROM {table} "
                              f"WHERE programme_id IN ({marks})", tuple(chunk))
                for row in c.fetchall():
                    states[keys[row["programme_id"]]] = loads(row["state"])
        return states

    def load_totals(self, version: int) -> tuple[dict[str, Any], Any]:
        with self.reading() as c:
            self.execute(c, "SELECT clinic_id, totals FROM "
                         f"{self.version_table('clinic_dashboards', version)}")
            clinics = {row["clinic_id"]: json.loads(row["totals"]) for row in c.fetchall()}
            self.execute(c, f"SELECT totals FROM {self.version_table('network_view', version)} "
                         "WHERE row_id = %s", [NETWORK_ROW])
            row = c.fetchone()
        network = json.loads(row["totals"]) if row else dashboards.new_totals()
        return clinics, network

    def load_held(self, name: str, version: int) -> dict[int, int]:
        """Programmes held behind a poison event: programme_id -> its position."""
        with self.reading() as c:
            self.execute(c, f"SELECT programme_id, position FROM {self.table(PARKED)} "
                         "WHERE projection = %s AND version = %s AND kind = 'poison'",
                         [name, version])
            return {UUID(row["programme_id"]).int: row["position"] for row in c.fetchall()}

    # ---- writing ----------------------------------------------------------

    def write(self, name: str, version: int, changes: Changes, *,
              expect: str = "live", fence: Fence | None = None) -> None:
        """Write a batch's changes and its tracking position in one transaction.

        `fence` (the runner's lock, locks.py) is called in the transaction, after
        the versions row is locked: it raises if this writer no longer holds the
        runner lock, and nothing is written."""
        with self.writing() as c:
            self.write_in(c, name, version, changes, expect=expect, fence=fence)

    def write_in(self, c: Any, name: str, version: int, changes: Changes, *,
                 expect: str = "live", fence: Fence | None = None) -> None:
        if expect == "live":
            lock = " FOR SHARE" if self.postgres else ""
            live, _building = self._versions(c, name, lock)
            if live != version:
                raise VersionRetired(f"{name} v{version} is no longer live (v{live} is)")
        if fence is not None:
            fence(c)
        elif expect == "building":
            _live, building = self._versions(c, name)
            if building != version:
                raise VersionRetired(f"{name} v{version} is no longer being built")
        self.executemany(
            c,
            f"INSERT INTO {self.version_table('programme_summaries', version)} "
            "(programme_id, clinic_id, status, started_us, position, summary, state) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (programme_id) DO UPDATE SET "
            "status = excluded.status, position = excluded.position, "
            "summary = excluded.summary, state = excluded.state",
            [
                (row.state["programme_id"], row.state["clinic_id"], row.state["status"],
                 row.state["start"], row.state["position"], to_json(row.summary),
                 canonical_json(row.state))
                for row in changes.programmes.values()
            ],
        )
        self.executemany(
            c,
            f"INSERT INTO {self.version_table('clinic_dashboards', version)} "
            "(clinic_id, totals, dashboard) VALUES (%s, %s, %s) ON CONFLICT (clinic_id) "
            "DO UPDATE SET totals = excluded.totals, dashboard = excluded.dashboard",
            [
                (clinic_id, canonical_json(totals), to_json(changes.dashboards[clinic_id]))
                for clinic_id, totals in changes.clinics.items()
            ],
        )
        if changes.network is not None:
            self.execute(
                c,
                f"INSERT INTO {self.version_table('network_view', version)} "
                "(row_id, totals, dashboard) VALUES (%s, %s, %s) ON CONFLICT (row_id) "
                "DO UPDATE SET totals = excluded.totals, dashboard = excluded.dashboard",
                [NETWORK_ROW, canonical_json(changes.network),
                 to_json(changes.network_dashboard)],
            )
        if changes.parked:
            parked_at = now_iso()
            self.executemany(
                c,
                f"INSERT INTO {self.table(PARKED)} (projection, version, position, "
                "programme_id, event_type, kind, error, parked_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (projection, version, position) DO UPDATE SET "
                "kind = excluded.kind, error = excluded.error, request = NULL",
                [
                    (name, version, p.position, str(UUID(int=p.programme)), p.event_type, p.kind,
                     p.error, parked_at)
                    for p in changes.parked
                ],
            )
        self.executemany(
            c,
            f"DELETE FROM {self.table(PARKED)} WHERE projection = %s AND version = %s "
            "AND position = %s",
            [(name, version, position) for position in changes.resolved],
        )
        self.executemany(
            c,
            f"UPDATE {self.table(PARKED)} SET kind = 'skipped', request = NULL "
            "WHERE projection = %s AND version = %s AND position = %s",
            [(name, version, position) for position in changes.skipped],
        )
        if changes.position is not None:
            self._insert_tracking(c, Tracking(tracking_key(name, version), changes.position))

    # ---- parked events ----------------------------------------------------

    def parked(self, name: str, version: int) -> list[dict[str, Any]]:
        with self.reading() as c:
            self.execute(c, "SELECT position, programme_id, event_type, kind, error, "
                         f"parked_at, request FROM {self.table(PARKED)} "
                         "WHERE projection = %s AND version = %s ORDER BY position",
                         [name, version])
            return [dict(row) for row in c.fetchall()]

    def request(self, name: str, version: int, position: int, action: str | None) -> None:
        """Ask the runner to retry (or skip) a poison event (None: withdraw the request)."""
        with self.writing() as c:
            self.execute(c, f"UPDATE {self.table(PARKED)} SET request = %s "
                         "WHERE projection = %s AND version = %s AND position = %s",
                         [action, name, version, position])

    def requests(self, name: str, version: int) -> list[dict[str, Any]]:
        with self.reading() as c:
            self.execute(c, f"SELECT position, programme_id, request FROM {self.table(PARKED)} "
                         "WHERE projection = %s AND version = %s AND request IS NOT NULL "
                         "ORDER BY position", [name, version])
            return [dict(row) for row in c.fetchall()]

    # ---- reading (the API) ------------------------------------------------

    def _live(self, c: Any, name: str) -> tuple[int, int]:
        self.execute(
            c,
            f"SELECT v.live_version AS version, t.notification_id AS position "
            f"FROM {self.table(VERSIONS)} v LEFT JOIN {self.table(self.tracking_table)} t "
            "ON t.application_name = v.projection || '.v' || v.live_version "
            "WHERE v.projection = %s",
            [name],
        )
        row = c.fetchone()
        if row is None:
            raise UnknownProjection(f"projection {name!r} has no tables: run `traction db init`")
        return row["version"], row["position"] or 0

    def live_position(self, name: str) -> tuple[int, int]:
        """(live version, its position)."""
        with self.reading() as c:
            return self._live(c, name)

    def live_marker(self, name: str) -> Marker:
        """What changes whenever a row of the live version does: the version, its
        position, and its parked events (a retried or skipped one rewrites rows
        without moving the position)."""
        with self.reading() as c:
            self.execute(
                c,
                f"SELECT v.live_version AS version, t.notification_id AS position, "
                f"(SELECT COUNT(*) FROM {self.table(PARKED)} p WHERE p.projection = v.projection "
                "AND p.version = v.live_version) AS parked, "
                f"(SELECT COUNT(*) FROM {self.table(PARKED)} p WHERE p.projection = v.projection "
                "AND p.version = v.live_version AND p.kind = 'skipped') AS skipped "
                f"FROM {self.table(VERSIONS)} v LEFT JOIN {self.table(self.tracking_table)} t "
                "ON t.application_name = v.projection || '.v' || v.live_version "
                "WHERE v.projection = %s",
                [name],
            )
            row = c.fetchone()
        if row is None:
            raise UnknownProjection(f"projection {name!r} has no tables: run `traction db init`")
        return Marker(row["version"], row["position"] or 0, row["parked"], row["skipped"])

    @contextmanager
    def reading_live(self, name: str) -> Iterator[tuple[Any, int, int]]:
        """A snapshot of the live version: (cursor, version, position)."""
        with self.reading() as c:
            version, position = self._live(c, name)
            yield c, version, position

    def summaries_page(
        self, name: str, clinic_id: str, status: str | None,
        after: tuple[int, str] | None, limit: int,
    ) -> tuple[int, list[str], tuple[int, str] | None]:
        """A page of a clinic's summaries, newest first: (position, summaries, next key)."""
        with self.reading_live(name) as (c, version, position):
            where = ["clinic_id = %s"]
            params: list[Any] = [clinic_id]
            if status is not None:
                where.append("status = %s")
                params.append(status)
            if after is not None:
                where.append("(started_us, programme_id) < (%s, %s)")
                params.extend(after)
            params.append(limit + 1)
            self.execute(c, "SELECT programme_id, started_us, summary FROM "
                         f"{self.version_table('programme_summaries', version)} "
                         f"WHERE {' AND '.join(where)} "
                         "ORDER BY started_us DESC, programme_id DESC LIMIT %s", params)
            rows = c.fetchall()
        following = None
        if len(rows) > limit:
            rows = rows[:limit]
            following = (rows[-1]["started_us"], rows[-1]["programme_id"])
        return position, [row["summary"] for row in rows], following

    def summary(self, name: str, clinic_id: str,
                programme_id: str) -> tuple[int, str | None, str | None]:
        """(position, summary JSON, state JSON) of one programme of this clinic."""
        with self.reading_live(name) as (c, version, position):
            self.execute(c, "SELECT summary, state FROM "
                         f"{self.version_table('programme_summaries', version)} "
                         "WHERE programme_id = %s AND clinic_id = %s", [programme_id, clinic_id])
            row = c.fetchone()
        if row is None:
            return position, None, None
        return position, row["summary"], row["state"]

    def clinic_dashboard(self, name: str, clinic_id: str) -> tuple[int, str | None]:
        with self.reading_live(name) as (c, version, position):
            self.execute(c, "SELECT dashboard FROM "
                         f"{self.version_table('clinic_dashboards', version)} "
                         "WHERE clinic_id = %s", [clinic_id])
            row = c.fetchone()
        return position, row["dashboard"] if row else None

    def network(self, name: str) -> tuple[int, list[str], str | None]:
        """(position, every clinic's dashboard JSON by clinic_id, the totals' JSON)."""
        with self.reading_live(name) as (c, version, position):
            self.execute(c, "SELECT dashboard FROM "
                         f"{self.version_table('clinic_dashboards', version)} "
                         "ORDER BY clinic_id")
            clinics = [row["dashboard"] for row in c.fetchall()]
            self.execute(c, "SELECT dashboard FROM "
                         f"{self.version_table('network_view', version)} WHERE row_id = %s",
                         [NETWORK_ROW])
            row = c.fetchone()
        return position, clinics, row["dashboard"] if row else None

    # ---- status -----------------------------------------------------------

    def recorded_at(self, position: int) -> datetime | None:
        """When the event at this position was recorded (from the ledger)."""
        with self.reading() as c:
            self.execute(c, f"SELECT recorded_at FROM {self.table(LEDGER)} WHERE position = %s",
                         [position])
            row = c.fetchone()
        if row is None:
            return None
        value = row["recorded_at"]
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    def digest(self, name: str, version: int | None = None) -> str:
        """A digest of every row of a version's read models (the live one by default)."""
        if version is None:
            version = self.versions(name)[0]
        digest = hashlib.sha256()
        keys = {"programme_summaries": "programme_id", "clinic_dashboards": "clinic_id",
                "network_view": "row_id"}
        with self.reading() as c:
            for base in PROJECTIONS[name]:
                self.execute(c, f"SELECT * FROM {self.version_table(base, version)} "
                             f"ORDER BY {keys[base]}")
                for row in c.fetchall():
                    digest.update(to_json([base, *[str(v) for v in dict(row).values()]]).encode())
        return digest.hexdigest()


class SQLiteReadModels(ReadModelStore, SQLiteTrackingRecorder):
    """The read models in the SQLite file of the event store."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        SQLiteTrackingRecorder.__init__(self, datastore)

    def table(self, name: str) -> str:
        return name

    @contextmanager
    def writing(self) -> Iterator[Any]:
        # BEGIN IMMEDIATE takes SQLite's write lock at once: a transaction
        # that read first and wrote later could fail to upgrade its lock.
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            # A read model's commit need not reach the disk before the next
            # one starts: rows and position are one transaction, so if a power
            # cut loses the last ones, both are lost and simply done again.
            # (The connection goes back to the pool as it came.)
            cursor.execute("PRAGMA synchronous=NORMAL")
            try:
                # Queue with the API's writers on the file's write lock rather
                # than in SQLite's busy handler (service/storage/sqlite_lock.py).
                with write_lock(self.datastore.pool.db_name).held():
                    cursor.execute("BEGIN IMMEDIATE")
                    try:
                        yield cursor
                    except BaseException:
                        connection.rollback()
                        raise
                    connection.commit()
            finally:
                cursor.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:
            yield c


class PostgresReadModels(ReadModelStore, PostgresTrackingRecorder):
    """The read models in the PostgreSQL schema of the event store."""

    postgres = True
    tracking_table = POSTGRES_TRACKING

    def __init__(self, datastore: PostgresDatastore) -> None:
        PostgresTrackingRecorder.__init__(self, datastore, tracking_table_name=POSTGRES_TRACKING)

    # The API's reads retry a pooled connection a database restart closed, as
    # the event store's reads do (service/storage/postgres.py, retry_read).

    @retry_read
    def live_position(self, name: str) -> tuple[int, int]:
        return super().live_position(name)

    @retry_read
    def live_marker(self, name: str) -> Marker:
        return super().live_marker(name)

    @retry_read
    def summaries_page(self, name: str, clinic_id: str, status: str | None,
                       after: tuple[int, str] | None, limit: int
                       ) -> tuple[int, list[str], tuple[int, str] | None]:
        return super().summaries_page(name, clinic_id, status, after, limit)

    @retry_read
    def summary(self, name: str, clinic_id: str,
                programme_id: str) -> tuple[int, str | None, str | None]:
        return super().summary(name, clinic_id, programme_id)

    @retry_read
    def clinic_dashboard(self, name: str, clinic_id: str) -> tuple[int, str | None]:
        return super().clinic_dashboard(name, clinic_id)

    @retry_read
    def network(self, name: str) -> tuple[int, list[str], str | None]:
        return super().network(name)

    def table(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            yield c

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield c


class ReplicaReadModels(ReadModelStore):
    """The read models as a streaming replica of the PostgreSQL store holds them:
    the same tables and SQL, read-only, on the replica's connections."""

    postgres = True
    tracking_table = POSTGRES_TRACKING

    def __init__(self, database: Database) -> None:
        self.database = database
        self.schema = database.store.pg_schema

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def writing(self) -> Any:
        raise TypeError("a replica's read models are read-only: the runner writes the primary's")

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.database.transaction(write=False) as c:
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield c


def open_read_models(application: Any) -> ReadModelStore:
    """The read models beside an application's event store (sharing its connections)."""
    datastore = application.recorder.datastore
    if isinstance(datastore, PostgresDatastore):
        return PostgresReadModels(datastore)
    return SQLiteReadModels(datastore)

