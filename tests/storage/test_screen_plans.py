"""PostgreSQL screens a save (domain.ledger.screen) by one index lookup per
programme, under the table lock, whatever the planner knows of the tables.

The screen reads each programme's last version. Written as MAX ... GROUP BY
over `originator_id IN (...)`, its plan followed the row estimates: with
statistics, a bulk chunk's 1,000 programmes took a parallel scan (34 ms on a
2-million-event store, against 9 ms by lookups); without them (autovacuum
off), a single post's was JIT-compiled (4.3 ms against 0.4)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from domain.ledger import Save
from service.storage.stores import parse_database_url
from tests.storage.test_screened_group import entry, stored
from tests.stores import initialise, programmes_at

pytestmark = pytest.mark.postgres

#: The store's programmes (each with EVENTS_EACH events) and the screen's sizes:
#: a single post, and a bulk chunk's many programmes.
PROGRAMMES = 1_000
EVENTS_EACH = 50


def _programme(number: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{number:012d}")


@pytest.mark.parametrize("statistics", [False, True], ids=["no statistics", "analysed"])
@pytest.mark.parametrize("programmes", [1, PROGRAMMES])
def test_postgresql_reads_each_programme_s_last_version_by_an_index_lookup(
        postgres_url, statistics, programmes):
    initialise(postgres_url)
    app = programmes_at(postgres_url)
    store = parse_database_url(postgres_url)
    try:
        recorder = app.recorder
        events = f'"{store.pg_schema}"."{recorder.events_table_name}"'
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {events} (originator_id, originator_version, topic, state, "
                "notification_id) SELECT ('00000000-0000-4000-8000-' || "
                "lpad(mod(n, %s)::text, 12, '0'))::uuid, n / %s + 1, 'tests:Event', '\\x', n + 1 "
                "FROM generate_series(0, %s) AS n",
                (PROGRAMMES, PROGRAMMES, PROGRAMMES * EVENTS_EACH - 1))
            if statistics:
                conn.execute(f"ANALYZE {events}")
            # The next event of each (and one new programme, which has none).
            saves = [Save([stored(_programme(n), EVENTS_EACH + 1)], [entry()])
                     for n in range(programmes - 1)]
            saves.append(Save([stored(uuid.uuid4(), 1)], [entry()]))
            plan = "\n".join(row[0] for row in conn.execute(
                b"EXPLAIN " + recorder._screen_query(saves)))
            held = conn.execute(recorder._screen_query(saves)).fetchall()
        # One backward lookup in the primary key per programme, planned once; no
        # aggregate over the programmes' events, no parallel plan, no JIT. (The
        # ledger here is empty: how its few rows are read does not matter.)
        shown = plan[:3000]
        events_lines = [line for line in plan.splitlines()
                        if f" on {recorder.events_table_name} " in line]
        assert len(events_lines) == 1 and "Index Only Scan Backward" in events_lines[0], shown
        for costly in ("Aggregate", "Gather", "JIT"):
            assert costly not in plan, shown
        # Every programme of the store read, at its last version; the new one not.
        assert sorted((row[0], row[1]) for row in held) == sorted(
            (_programme(n), EVENTS_EACH) for n in range(programmes - 1))
    finally:
        app.close()
