"""The write path's statements sent to PostgreSQL through libpq, past psycopg's cursor.

A single-event post makes two round trips: the read that brings the cached
programme up to date (`events_since`) and the save (lock, then the server's
save function, migration 0011; a save it does not take makes two: lock, head
and checks; rows and commit). Through a psycopg cursor each cost 50-90 µs
of the worker's CPU, most of it the cursor's own Python around the round trip
(its execute generator, the prepared-statement manager, choosing results, dict
rows). Here the same round trip is made by the calls the cursor makes itself,
and no others: libpq's send (`PGconn.send_query`, `send_query_prepared`), then
psycopg's C generator waited for by `Connection.wait`, which lets other threads
run while the server answers; rows are loaded by psycopg's own loaders (a
`Transformer`), so every value has the type a cursor would give it. About 40 µs
a round trip (measured 2026-12-06; BENCHMARKS.md, P12).

What a cursor would check is checked here too: a failed statement raises
psycopg's exception for its SQLSTATE (the library's `get_connection` turns it
into its own IntegrityError, OperationalError, ..., as it does for a cursor's),
and a lost connection raises OperationalError from libpq's send or psycopg's
generator. The connection must be the caller's alone (checked out of the pool):
psycopg's per-connection lock is not taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection, OperationalError, errors, generators, pq
from psycopg.adapt import Transformer

#: The statements prepared on each connection, by name (a connection is opened
#: again after a restart: its new session has none, and they are prepared anew).
_PREPARED = "_traction_prepared"


def results(conn: Connection[Any], query: bytes) -> list[pq.PGresult]:
    """Every result of a simple-protocol query (one or several statements, their
    values written in as literals), in order. Raises on the first failed one."""
    pgconn = _live(conn)
    pgconn.send_query(query)
    return _checked(conn, conn.wait(generators.execute(pgconn)))


@dataclass(frozen=True)
class Statement:
    """A statement to prepare once per connection: `$1`, `$2`, ... for its
    parameters, whose types the server infers."""

    text: bytes
    #: Named after its text, so that two stores (schemas) never share a name.
    name: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name",
                           b"traction_" + hashlib.sha256(self.text).hexdigest()[:16].encode())


def prepared(conn: Connection[Any], statement: Statement, params: Sequence[bytes | None]
             ) -> pq.PGresult:
    """The result of `statement` run with `params` (each the value's text form),
    prepared on this connection first if it is not yet. The result comes back in
    binary, which psycopg's loaders read without parsing text."""
    name, pgconn = statement.name, _live(conn)
    names: set[bytes] = conn.__dict__.setdefault(_PREPARED, set())
    if name in names:
        try:
            return _run_prepared(conn, name, params)
        except errors.InvalidSqlStatementName:
            # Deallocated meanwhile: psycopg sends DEALLOCATE ALL after a ROLLBACK
            # or a DROP it has seen, which takes ours too. Prepared again.
            names.discard(name)
    pgconn.send_prepare(name, statement.text)
    _checked(conn, conn.wait(generators.execute(pgconn)))
    names.add(name)
    return _run_prepared(conn, name, params)


def _run_prepared(conn: Connection[Any], name: bytes, params: Sequence[bytes | None]
                  ) -> pq.PGresult:
    conn.pgconn.send_query_prepared(name, params, result_format=pq.Format.BINARY)
    return _checked(conn, conn.wait(generators.execute(conn.pgconn)))[0]


def rows(conn: Connection[Any], result: pq.PGresult) -> list[tuple[Any, ...]]:
    """The result's rows as tuples of values, loaded as a cursor loads them."""
    transformer = Transformer(conn)
    transformer.set_pgresult(result)
    return transformer.load_rows(0, result.ntuples, tuple)


def _live(conn: Connection[Any]) -> pq.abc.PGconn:
    """The connection's libpq handle; OperationalError if libpq knows it is lost
    (as a cursor checks before it sends)."""
    if conn.pgconn.status != pq.ConnStatus.OK:
        raise OperationalError("the connection is lost")
    return conn.pgconn


def _checked(conn: Connection[Any], found: list[pq.PGresult]) -> list[pq.PGresult]:
    for result in found:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=conn.info.encoding)
    return found
