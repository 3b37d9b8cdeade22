"""The write path's statements sent through libpq (service/storage/postgres_direct.py)
answer as a psycopg cursor does: the same values of the same types, psycopg's
exception for a failed statement, OperationalError for a lost connection, and a
prepared statement that the session lost is prepared again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from service.storage import postgres_direct as direct
from service.storage.stores import parse_database_url
from tests.builders import event_envelopes, session, started
from tests.stores import initialise, programmes_at

pytestmark = pytest.mark.postgres

#: One value of each type the write path reads back (and a NULL).
VALUES = ("SELECT '6f1c9d8e-2b3a-4c5d-8e7f-0123456789ab'::uuid, 42::bigint, 'té'::text, "
          "'\\x00ff10'::bytea, true, NULL::bigint, "
          "'2026-12-06 20:10:11.123456+00'::timestamptz")


@pytest.fixture
def conn(postgres_url):
    with psycopg.connect(parse_database_url(postgres_url).conninfo(), autocommit=True) as conn:
        yield conn


def test_rows_have_the_values_and_types_a_cursor_gives(conn):
    expected = conn.execute(VALUES).fetchall()
    assert direct.rows(conn, direct.results(conn, VALUES.encode())[0]) == expected
    assert expected[0][3] == b"\x00\xff\x10"
    assert expected[0][6] == datetime(2026, 12, 6, 20, 10, 11, 123456, tzinfo=UTC)


def test_every_result_of_several_statements_in_order(conn):
    found = direct.results(conn, b"BEGIN; SELECT 1; SELECT 2, 3; COMMIT")
    assert [direct.rows(conn, result) for result in found[1:3]] == [[(1,)], [(2, 3)]]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_prepared_statement_binds_text_parameters_and_reads_binary_rows(conn):
    statement = direct.Statement(VALUES.replace("42::bigint", "$1::bigint + 1")
                                 .replace("'té'::text", "$2::text").encode())
    result = direct.prepared(conn, statement, [b"41", "té".encode()])
    assert result.fformat(0) == psycopg.pq.Format.BINARY
    assert direct.rows(conn, result) == conn.execute(VALUES).fetchall()
    # Prepared once on this connection, run again without preparing.
    assert direct.rows(conn, direct.prepared(conn, statement, [b"1", b"x"]))[0][1:3] == (2, "x")
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s",
                        [statement.name.decode()]).fetchone() == (1,)


def test_a_statement_the_session_lost_is_prepared_again(conn):
    statement = direct.Statement(b"SELECT $1::int * 2")
    assert direct.rows(conn, direct.prepared(conn, statement, [b"2"])) == [(4,)]
    conn.execute("DEALLOCATE ALL")  # as psycopg does after a ROLLBACK it has seen
    assert direct.rows(conn, direct.prepared(conn, statement, [b"3"])) == [(6,)]


def test_a_failed_statement_raises_psycopg_s_error_for_its_sqlstate(conn):
    conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        direct.results(conn, b"BEGIN; INSERT INTO t VALUES (1), (1); COMMIT")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    direct.results(conn, b"ROLLBACK")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        direct.prepared(conn, direct.Statement(b"SELECT nothing FROM t WHERE k = $1"), [b"1"])


def test_a_lost_connection_raises_operational_error(conn):
    other = psycopg.connect(conn.info.dsn, autocommit=True)
    with other:
        other.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    with pytest.raises(psycopg.OperationalError):
        direct.results(conn, b"SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        direct.results(conn, b"SELECT 1")  # and again, once libpq knows


def test_the_recorder_s_reads_and_saves_go_through_libpq_not_a_cursor(postgres_url, monkeypatch):
    """A post to a programme whose owner the worker knows: its three round trips
    (the programme brought up to date; the save's two) make no psycopg cursor."""
    initialise(postgres_url)
    app = programmes_at(postgres_url)
    try:
        clinic, programme_id = "clinic-a", uuid.uuid4()
        app.record_events(clinic, programme_id, event_envelopes(started()))
        app.record_events(clinic, programme_id, event_envelopes(session()))  # owner known
        cursors: list[object] = []
        made = psycopg.Connection.cursor

        def counted(self, *args, **kwargs):
            cursors.append(self)
            return made(self, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "cursor", counted)
        receipt = app.record_events(clinic, programme_id, event_envelopes(session()))
        assert receipt.version == 3
        assert cursors == []
    finally:
        app.close()
