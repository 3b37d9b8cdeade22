"""The settings: every TRACTION_* variable read once, typed, and refused clearly when bad."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import VARIABLES, Settings, SettingsError
from service.storage.sealing import generate_kek

README = Path(__file__).resolve().parents[2] / "README.md"

#: A key, and a file holding another (TRACTION_DATA_KEY_FILE is read when the settings are).
DATA_KEY = generate_kek()
KEY_FILE = Path(tempfile.mkdtemp(prefix="traction-key-")) / "data.key"
KEY_FILE.write_text(generate_kek() + "\n")

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
    "TRACTION_CHECKPOINT_KEY": ("a-secret", "18811fa277fa4ab73ca51f22c85a22fa"
                                "a73d4df7ed7408a808cac58fb5eb69cf",
                                "18811fa277fa4ab73ca51f22c85a22fa"
                                "a73d4df7ed7408a808cac58fb5eb69cf"),
    "TRACTION_CHECKPOINT_PREVIOUS_KEYS": ("old-key,,", "old-key, older key",
                                          ("old-key", "older key")),
    "TRACTION_TRUSTED_PROXIES": ("10.0.0.5/24", "172.30.80.10, 10.1.0.0/16",
                                 ("172.30.80.10", "10.1.0.0/16")),
    "TRACTION_CHECKPOINT_LOG": ("relative/checkpoints.jsonl", "/var/log/traction/cp.jsonl",
                                Path("/var/log/traction/cp.jsonl")),
    "TRACTION_FHIR_EXPORT_DIR": (None, "/srv/fhir-exports", "/srv/fhir-exports"),
    "TRACTION_DATA_KEY": ("c2hvcnQ=", DATA_KEY, DATA_KEY),
    "TRACTION_DATA_KEY_FILE": ("/nonexistent/data.key", str(KEY_FILE), str(KEY_FILE)),
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
    if variable.secret:  # a secret's value is never repeated
        assert str(refused.value).startswith(f"{variable.name} is not valid: ")
        assert bad not in str(refused.value)
    else:
        assert str(refused.value).startswith(f"{variable.name}={bad!r} is not valid: ")
    if variable.name != "TRACTION_DATA_KEY_FILE":  # it says what is wrong with the file
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


def test_the_data_key_comes_from_the_variable_or_the_key_file_never_both():
    assert Settings.from_env({"TRACTION_DATA_KEY": DATA_KEY}).data_key == DATA_KEY
    from_file = Settings.from_env({"TRACTION_DATA_KEY_FILE": str(KEY_FILE)})
    assert from_file.data_key == KEY_FILE.read_text().strip()
    assert from_file.kek is not None and len(from_file.kek) == 32
    assert Settings().kek is None
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"TRACTION_DATA_KEY": DATA_KEY,
                           "TRACTION_DATA_KEY_FILE": str(KEY_FILE)})
    not_a_key = KEY_FILE.with_name("not-a.key")
    not_a_key.write_text("hunter2\n")
    with pytest.raises(SettingsError, match="holding one key") as refused:
        Settings.from_env({"TRACTION_DATA_KEY_FILE": str(not_a_key)})
    assert "hunter2" not in str(refused.value)
    assert DATA_KEY not in repr(Settings(data_key=DATA_KEY))


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


def test_a_secret_may_come_from_a_file(tmp_path):
    key = "0a1b2c3d4e5f60718293a4b5c6d7e8f9" "f1e2d3c4b5a697887766554433221100"
    secret = tmp_path / "checkpoint.key"
    secret.write_text(key + "\n")
    settings = Settings.from_env({"TRACTION_CHECKPOINT_KEY_FILE": str(secret)})
    assert settings.checkpoint_key == key
    # The variable itself wins; an empty or missing file is refused, naming it.
    assert Settings.from_env({"TRACTION_CHECKPOINT_KEY_FILE": str(secret),
                              "TRACTION_CHECKPOINT_KEY": key[::-1]}).checkpoint_key == key[::-1]
    secret.write_text("\n")
    with pytest.raises(SettingsError, match="TRACTION_CHECKPOINT_KEY_FILE.*it is empty"):
        Settings.from_env({"TRACTION_CHECKPOINT_KEY_FILE": str(secret)})
    with pytest.raises(SettingsError, match="a readable file holding TRACTION_CHECKPOINT_KEY"):
        Settings.from_env({"TRACTION_CHECKPOINT_KEY_FILE": str(tmp_path / "missing")})
    # What the file holds is checked as the variable is: a weak key is refused, unseen.
    secret.write_text("a-secret")
    with pytest.raises(SettingsError) as weak:
        Settings.from_env({"TRACTION_CHECKPOINT_KEY_FILE": str(secret)})
    assert "a-secret" not in str(weak.value)
