"""Positions as a clinic counts them, read from the ledger without an index on
(clinic_id, position) (dropped by migration 0009): the same answers, found by
index lookups (service/storage/clinic_positions.py), on both stores."""

from __future__ import annotations

import re
import sqlite3
import uuid
from contextlib import closing

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry
from service.storage.sqlite import SELECT_COUNT_AT_POSITION, clinic_positions_query
from service.storage.stores import parse_database_url
from tests.stores import initialise, programmes_at

#: Whose event each position is: runs of one clinic and lone events of another,
#: so a clinic's count stands still over other clinics' stretches.
CLINICS = ("a" * 3 + "b" + "a" + "c" * 5 + "ab" * 4 + "b" * 6 + "a" + "c" + "b" * 2)


def test_a_clinic_s_count_and_numbers_are_its_events_up_to_each_position(store_url):
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        for clinic in CLINICS:
            recorder.insert_events(
                [StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                             topic="tests:Event", state=b"{}")],
                ledger=[LedgerEntry(uuid.uuid4(), f"clinic-{clinic}", "Event", None)])
        head = len(CLINICS)
        for clinic in ("a", "b", "c", "none"):
            mine = [position for position, whose in enumerate(CLINICS, start=1)
                    if whose == clinic]
            counts = [recorder.clinic_position_at(f"clinic-{clinic}", position)
                      for position in range(head + 3)]
            assert counts == [sum(1 for p in mine if p <= position)
                              for position in range(head + 3)], clinic
            asked = range(1, head + 3)  # other clinics' positions, and ones not recorded
            assert recorder.clinic_positions(f"clinic-{clinic}", asked) == {
                position: number for number, position in enumerate(mine, start=1)}
    finally:
        app.close()


def _sqlite_plan(path: str, statement: str, params: object) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)]


def test_sqlite_finds_a_clinic_s_positions_by_index_lookups(sqlite_url):
    initialise(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    # Each position asked for by the primary key, not the clinic's entries read.
    plan = _sqlite_plan(path, *clinic_positions_query("clinic-a", [3, 9, 27]))
    assert plan == ["SEARCH event_ledger USING INTEGER PRIMARY KEY (rowid=?)"], plan
    # The clinic's last number, then one entry of (clinic_id, clinic_position) per
    # probe: never a scan of the ledger or of the clinic's entries.
    plan = _sqlite_plan(path, SELECT_COUNT_AT_POSITION, {"clinic": "clinic-a", "position": 9})
    ledger = [line for line in plan if "event_ledger" in line or line.endswith(" l")]
    assert ledger == [
        "SEARCH event_ledger USING COVERING INDEX event_ledger_clinic_position_idx "
        "(clinic_id=?)",
        "SEARCH l USING COVERING INDEX event_ledger_clinic_position_idx "
        "(clinic_id=? AND clinic_position=? AND rowid<?) LEFT-JOIN"], plan


@pytest.mark.postgres
def test_postgresql_finds_a_clinic_s_positions_by_index_lookups(postgres_url):
    initialise(postgres_url)
    app = programmes_at(postgres_url)
    store = parse_database_url(postgres_url)
    try:
        recorder = app.recorder
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            # A ledger of some size, its statistics taken, for the planner's real
            # choice (on a few rows, it reads the table whatever the indexes).
            conn.execute(
                f'INSERT INTO "{store.pg_schema}".event_ledger (position, programme_id, '
                "version, event_id, clinic_id, event_type, recorded_at, saved_version, "
                "chain_hash, clinic_position) SELECT p, gen_random_uuid(), 1, "
                "gen_random_uuid(), 'clinic-' || (p % 4), 'Event', now(), 1, '', p / 4 + 1 "
                "FROM generate_series(1, 40000) AS p")
            conn.execute(f'ANALYZE "{store.pg_schema}".event_ledger')

            def plan(statement, types: str, values: str, plans: str) -> str:
                """EXPLAIN of the statement prepared in SQL ($1, $2, ... for its
                placeholders, or its names, in order), executed with `values`
                (SQL literals)."""
                text = statement.as_string(conn)
                names = dict.fromkeys(re.findall(r"%\(\w+\)s", text))
                for number, name in enumerate(names, start=1):
                    text = text.replace(name, f"${number}")
                for number in range(1, text.count("%s") + 1):
                    text = text.replace("%s", f"${number}", 1)
                conn.execute(f"SET plan_cache_mode = {plans}")
                conn.execute(f"PREPARE planned ({types}) AS {text}")
                try:
                    return "\n".join(row[0] for row in conn.execute(
                        f"EXPLAIN EXECUTE planned ({values})"))
                finally:
                    conn.execute("DEALLOCATE planned")

            # The recorder prepares them: the plan for the values given, and the
            # one PostgreSQL keeps for any values once it has run one 5 times.
            for plans in ("force_custom_plan", "force_generic_plan"):
                found = plan(recorder.select_clinic_positions, "bigint[], text",
                             "'{3, 9, 27}', 'clinic-1'", plans)
                assert "Index Scan using event_ledger_pkey" in found, (plans, found)
                assert "Seq Scan" not in found, (plans, found)
                assert "clinic_position_idx" not in found, (plans, found)
                # A plan for any values, or for these.
                assert ("'clinic-1'" in found) == (plans == "force_custom_plan"), found
                found = plan(recorder.select_clinic_position_at, "text, bigint",
                             "'clinic-1', 20000", plans)
                assert "Seq Scan" not in found and "Bitmap" not in found, (plans, found)
                assert found.count("using event_ledger_clinic_position_idx") == 2, (plans, found)
                assert "Index Cond: ((clinic_id = " in found, (plans, found)
                assert "AND (clinic_position = ((probe" in found, (plans, found)
                assert ("'clinic-1'" in found) == (plans == "force_custom_plan"), found
    finally:
        app.close()
