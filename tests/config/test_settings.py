"""The settings: every TRACTION_* variable read once, typed, and refused clearly when bad."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import VARIABLES, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"

#: A value each variable must refuse, and one it must take (with what it becomes).
CASES = {
    "TRACTION_DATABASE_URL": ("mysql://db/x", "postgresql://u:p@db:5433/ledger",
                              "postgresql://u:p@db:5433/ledger"),
    "TRACTION_BIND": ("localhost", "0.0.0.0:9000", "0.0.0.0:9000"),
    "TRACTION_WORKERS": ("0", "3", 3),
    "TRACTION_THREADS": ("many", "16", 16),
    "TRACTION_MAX_BODY_BYTES": ("10", "5000000", 5_000_000),
    "TRACTION_MAX_BULK_BYTES": ("1gb", "1000000000", 1_000_000_000),
    "TRACTION_PG_POOL_SIZE": ("0", "8", 8),
    "TRACTION_PG_MAX_OVERFLOW": ("-1", "0", 0),
    "TRACTION_PG_CONNECT_TIMEOUT": ("1.5", "5", 5),
    "TRACTION_PG_LOCK_TIMEOUT": ("0", "30", 30),
    "TRACTION_SQLITE_LOCK_TIMEOUT": ("soon", "60", 60),
    "TRACTION_AGGREGATE_CACHE_SIZE": ("-5", "0", 0),
    "TRACTION_LOG_LEVEL": ("verbose", "WARNING", "warning"),
    "TRACTION_LOG_FORMAT": ("xml", "text", "text"),
    "TRACTION_MIN_POSITION_WAIT": ("31", "0.5", 0.5),
    "TRACTION_MIN_POSITION_WAITERS": ("-1", "4", 4),
    "TRACTION_METRICS_TOKEN": ("short", "s" * 32, "s" * 32),
    "TRACTION_MIN_POSITION_WAITERS_PER_TOKEN": ("many", "2", 2),
    "TRACTION_READ_STALENESS": ("-0.1", "0", 0.0),
    "TRACTION_PROJECTION_DROP_GRACE": ("-1", "0", 0.0),
    "TRACTION_DEMO_CLINICS": ("201", "2", 2),
    "TRACTION_DEMO_PROGRAMMES": ("0", "10", 10),
    "TRACTION_CHECKPOINT_KEY": (None, "a-secret", "a-secret"),
    "TRACTION_READ_DATABASE_URL": ("sqlite:///replica.sqlite", "postgresql://u:p@replica/ledger",
                                   "postgresql://u:p@replica/ledger"),
}
#: What a variable needs beside it to be valid (a replica needs a PostgreSQL store).
CONTEXT = {"TRACTION_READ_DATABASE_URL": {"TRACTION_DATABASE_URL": "postgresql://u:p@db/ledger"}}


def test_every_setting_has_one_variable_and_every_variable_a_case():
    fields = set(Settings.__dataclass_fields__)
    assert sorted(v.field for v in VARIABLES) == sorted(fields)
    assert {v.name for v in VARIABLES} == set(CASES)


def test_unset_and_empty_variables_give_the_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({name: "" for name in CASES}) == Settings()
    # The source tree's own store, by its absolute path (tests/cli/test_store_location.py).
    assert Settings().database_url == f"sqlite:///{README.parent / 'var' / 'traction.sqlite'}"
    assert Settings().min_position_wait == 2.0


@pytest.mark.parametrize("variable", [v for v in VARIABLES if CASES[v.name][0] is not None],
                         ids=lambda v: v.name)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(variable):
    bad = CASES[variable.name][0]
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**CONTEXT.get(variable.name, {}), variable.name: bad})
    assert refused.value.variable == variable.name
    assert str(refused.value).startswith(f"{variable.name}={bad!r} is not valid: ")
    assert variable.accepts in str(refused.value)


@pytest.mark.parametrize("variable", VARIABLES, ids=lambda v: v.name)
def test_a_good_value_is_read_and_typed(variable):
    _, good, expected = CASES[variable.name]
    settings = Settings.from_env({**CONTEXT.get(variable.name, {}), variable.name: good})
    assert getattr(settings, variable.field) == expected


def test_the_store_carries_the_store_settings():
    settings = Settings.from_env({"TRACTION_DATABASE_URL": "postgresql://u@db/x?schema=s",
                                  "TRACTION_PG_POOL_SIZE": "7",
                                  "TRACTION_AGGREGATE_CACHE_SIZE": "5"})
    store = settings.store
    assert (store.kind, store.pg_host, store.pg_dbname, store.pg_schema) == (
        "postgresql", "db", "x", "s")
    assert (store.options.pg_pool_size, store.options.aggregate_cache_size) == (7, 5)


def test_a_read_replica_needs_a_postgresql_store_and_reads_its_schema():
    replica = "postgresql://u@replica:5433/ledger"
    with pytest.raises(SettingsError, match="needs a PostgreSQL store, and "
                                            "TRACTION_DATABASE_URL is sqlite"):
        Settings.from_env({"TRACTION_READ_DATABASE_URL": replica})
    primary = {"TRACTION_DATABASE_URL": "postgresql://u@db/ledger?schema=north"}
    with pytest.raises(SettingsError, match="leave \\?schema= out"):
        Settings.from_env({**primary, "TRACTION_READ_DATABASE_URL": replica + "?schema=south"})
    settings = Settings.from_env({**primary, "TRACTION_READ_DATABASE_URL": replica})
    read_store = settings.read_store
    assert read_store is not None
    assert (read_store.pg_host, read_store.pg_port, read_store.pg_schema) == (
        "replica", 5433, "north")
    assert Settings().read_store is None


def test_the_checkpoint_key_is_never_shown_in_the_settings_repr():
    assert "a-secret" not in repr(Settings(checkpoint_key="a-secret"))


def test_a_command_with_a_bad_setting_stops_with_the_variable_named():
    result = CliRunner().invoke(main, ["clinics", "list"],
                                env={"TRACTION_PG_POOL_SIZE": "lots"})
    assert result.exit_code == 2
    assert "TRACTION_PG_POOL_SIZE='lots' is not valid: an integer from 1 to 1000" in result.output


def test_the_readme_documents_every_variable():
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(TRACTION_[A-Z_]+)`", table))
    assert {v.name for v in VARIABLES} <= documented
    assert documented - {v.name for v in VARIABLES} == set()
