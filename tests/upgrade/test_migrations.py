"""`traction migrate` on both stores: steps in transactions, one run at a time, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from click.testing import CliRunner

from service.cli import main
from service.storage import migrations
from service.storage.stores import parse_database_url
from tests.stores import programmes_at

MIGRATIONS = Path(migrations.__file__).parent


def cli(url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"TRACTION_DATABASE_URL": url})


def tables(url: str) -> set[str]:
    store = parse_database_url(url)
    with migrations._connection(store) as connection:
        inspector = sqlalchemy.inspect(connection)
        return set(inspector.get_table_names(schema=store.pg_schema if store.is_postgres
                                             else None))


def ledger_unique_keys(url: str) -> set[tuple[str, ...]]:
    store = parse_database_url(url)
    with migrations._connection(store) as connection:
        inspector = sqlalchemy.inspect(connection)
        return {tuple(key["column_names"]) for key in inspector.get_unique_constraints(
            "event_ledger", schema=store.pg_schema if store.is_postgres else None)}


def downgrade_to(store, revision: str) -> None:
    with migrations.migration_lock(store), \
            migrations._connection(store, migrating=True) as connection:
        config = migrations._config()
        config.attributes["connection"] = connection
        config.attributes["schema"] = store.pg_schema if store.is_postgres else None
        command.downgrade(config, revision)


def ledger_indexes(url: str) -> set[str]:
    store = parse_database_url(url)
    with migrations._connection(store) as connection:
        inspector = sqlalchemy.inspect(connection)
        return {index["name"] for index in inspector.get_indexes(
            "event_ledger", schema=store.pg_schema if store.is_postgres else None)}


def test_a_new_store_is_created_at_the_newest_schema(store_url):
    found = migrations.status(parse_database_url(store_url))
    assert found.current and found.revision == found.head == migrations.known_revisions()[-1]
    assert {"event_ledger", "clinics", "api_tokens", "access_log", "chain_checkpoints",
            "projection_versions", "read_model_formats", "alembic_version"} <= tables(store_url)
    dry = cli(store_url, "migrate", "--dry-run")
    assert dry.exit_code == 0 and "no schema steps to run" in dry.output


def test_a_second_migrate_at_the_same_moment_is_refused(store_url):
    with migrations.migration_lock(parse_database_url(store_url)):
        refused = cli(store_url, "migrate")
    assert refused.exit_code == 1
    assert "another `traction migrate` is running" in refused.output


def test_a_store_of_a_newer_release_is_refused_by_migrate_and_by_every_command(store_url):
    store = parse_database_url(store_url)
    with migrations._connection(store, migrating=True) as connection, connection.begin():
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    migrated = cli(store_url, "migrate")
    assert migrated.exit_code == 1 and "migrated by a newer release" in migrated.output
    listed = cli(store_url, "clinics", "list")
    assert listed.exit_code == 1 and "migrated by a newer release (schema 0999" in listed.output
    served = cli(store_url, "serve", "--no-demo")
    assert served.exit_code == 1 and "newer release" in served.output


BROKEN_STEP = '''"""A step that fails half-way.

Revision ID: 9001
Revises: {head}
"""

from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE half_applied (id INTEGER)")
    op.execute("INSERT INTO no_such_table VALUES (1)")
'''


@pytest.fixture
def with_a_broken_step(tmp_path, monkeypatch):
    """This release's migrations plus one more whose second statement fails."""
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrations.known_revisions()[-1]
    (copy / "versions" / "9001_broken.py").write_text(BROKEN_STEP.format(head=head))

    def config():
        config = migrations.Config()
        config.set_main_option("script_location", str(copy))
        return config

    migrations._scripts.cache_clear()
    monkeypatch.setattr(migrations, "_config", config)
    yield head
    migrations._scripts.cache_clear()


def test_a_step_that_fails_leaves_nothing_of_itself_and_the_store_at_the_step_before(
        store_url, with_a_broken_step):
    head = with_a_broken_step
    store = parse_database_url(store_url)
    with pytest.raises(sqlalchemy.exc.DBAPIError):
        migrations.migrate(store)
    assert "half_applied" not in tables(store_url)  # the step's first statement rolled back
    found = migrations.status(store)
    assert found.revision == head and [s.revision for s in found.pending] == ["9001"]


def test_0009_drops_the_ledger_s_clinic_index_and_its_downgrade_makes_it_again(store_url):
    """Every insert paid for (clinic_id, position); the clinic's reads use
    (clinic_id, clinic_position) or the primary key (tests/storage/
    test_clinic_position_queries.py)."""
    store = parse_database_url(store_url)
    assert "event_ledger_clinic_position_idx" in ledger_indexes(store_url)
    assert "event_ledger_clinic_idx" not in ledger_indexes(store_url)
    with migrations.migration_lock(store), \
            migrations._connection(store, migrating=True) as connection:
        config = migrations._config()
        config.attributes["connection"] = connection
        config.attributes["schema"] = store.pg_schema if store.is_postgres else None
        command.downgrade(config, "0008_programme_aliases")
    assert "event_ledger_clinic_idx" in ledger_indexes(store_url)
    assert [step.revision for step in migrations.status(store).pending][0] == (
        "0009_drop_ledger_clinic_index")
    migrations.migrate(store)
    assert "event_ledger_clinic_idx" not in ledger_indexes(store_url)
    # Nor do the recorder's own statements (run where the library creates tables:
    # the library's conformance tests, bench/ingest.py) make it again.
    app = programmes_at(store_url)
    try:
        app.recorder.create_table()
    finally:
        app.close()
    assert "event_ledger_clinic_idx" not in ledger_indexes(store_url)


def test_0010_drops_sqlite_s_ledger_key_on_programme_and_version_keeping_every_row(store_url):
    """On SQLite the pair is the events' key, and the ledger's rows are read by
    position (tests/storage/test_programme_reads.py); PostgreSQL keeps its key.
    The downgrade makes it again; the rows and the reads stay as they were
    through both, and the clinic numbering trigger of 0006 is made again."""
    import uuid

    from eventsourcing.persistence import StoredEvent

    from domain.ledger import LedgerEntry

    store = parse_database_url(store_url)
    programme_ids = [uuid.uuid4() for _ in range(3)]

    def reads() -> dict:
        app = programmes_at(store_url)
        try:
            return {p: (app.ledger.entries_of_programme(p), app.ledger.owners([p]))
                    for p in programme_ids}
        finally:
            app.close()

    app = programmes_at(store_url)
    try:
        for programme_id in programme_ids:
            app.recorder.insert_events(
                [StoredEvent(originator_id=programme_id, originator_version=version,
                             topic="tests:Event", state=b"{}") for version in (1, 2, 3, 4)],
                ledger=[LedgerEntry(uuid.uuid4(), "clinic-a", "Event", None)
                        for _ in range(4)])
    finally:
        app.close()
    before = reads()
    assert all(len(entries) == 4 for entries, _ in before.values())
    keep_key = store.is_postgres
    assert (("programme_id", "version") in ledger_unique_keys(store_url)) is keep_key
    downgrade_to(store, "0009_drop_ledger_clinic_index")
    assert ("programme_id", "version") in ledger_unique_keys(store_url)
    assert reads() == before
    migrations.migrate(store)
    assert (("programme_id", "version") in ledger_unique_keys(store_url)) is keep_key
    assert {"event_ledger_event_id_clinic_idx",
            "event_ledger_clinic_position_idx"} <= ledger_indexes(store_url)
    assert reads() == before
    if not store.is_postgres:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(store_url.removeprefix("sqlite:///"))) as conn:
            assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                "AND tbl_name = 'event_ledger'").fetchall() == [
                ("event_ledger_clinic_position",)]
    # Nor do the recorder's own statements make the key again.
    app = programmes_at(store_url)
    try:
        app.recorder.create_table()
    finally:
        app.close()
    assert (("programme_id", "version") in ledger_unique_keys(store_url)) is keep_key


def save_functions(url: str) -> set[str]:
    """The store's functions named like 0011's (none on SQLite, which has no such thing)."""
    store = parse_database_url(url)
    if not store.is_postgres:
        return set()
    with migrations._connection(store) as connection:
        return set(connection.execute(sqlalchemy.text(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = :schema AND p.proname = 'event_ledger_save_event'"),
            {"schema": store.pg_schema}).scalars())


def test_0011_makes_postgresql_s_save_function_and_its_downgrade_drops_it(store_url):
    """On PostgreSQL the function is in the store's own schema (two stores in one
    database each have theirs); SQLite's schema is what 0010 left."""
    store = parse_database_url(store_url)
    expected = {"event_ledger_save_event"} if store.is_postgres else set()
    assert save_functions(store_url) == expected
    indexes_before = ledger_indexes(store_url)
    downgrade_to(store, "0010_sqlite_ledger_programme_key")
    assert save_functions(store_url) == set()
    assert [step.revision for step in migrations.status(store).pending] == [
        "0011_postgres_save_one_event"]
    migrations.migrate(store)
    assert save_functions(store_url) == expected
    assert ledger_indexes(store_url) == indexes_before
