"""The command line finds its store the same way from any directory, and a
command that reads never creates one: a missing store is named, with how to
point the command at the right one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import config
from service.cli import main
from service.config import SettingMissing, Settings, default_database_url

#: Commands that read or change what is recorded: none may create a store.
READING_COMMANDS = [
    ["clinics", "list"],
    ["tokens", "revoke", "0123456789abcdef"],
    ["audit", "verify"],
    ["audit", "checkpoint"],
    ["audit", "replay", "00000000-0000-4000-8000-000000000000"],
    ["audit", "export", "-o", "export.jsonl"],
    ["projections", "status"],
    ["projections", "run", "--once"],
    ["projections", "rebuild"],
    ["projections", "digest"],
]


def run(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A directory that is not the source tree, as the current directory."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def source_tree(tmp_path, monkeypatch) -> Path:
    """A stand-in source tree, so the default store is not the developer's own."""
    tree = tmp_path / "traction"
    tree.mkdir()
    (tree / "pyproject.toml").write_text("[project]\nname = 'traction-ledger'\n")
    monkeypatch.setattr(config, "SOURCE_TREE", tree)
    monkeypatch.delenv("TRACTION_DATABASE_URL", raising=False)
    return tree


def test_the_default_store_is_in_the_source_tree_by_its_absolute_path(source_tree):
    url = default_database_url()
    assert url == f"sqlite:///{source_tree}/var/traction.sqlite"
    assert url.startswith("sqlite:////")  # absolute: the same wherever a command runs
    assert Settings.from_env({}).store.sqlite_path == source_tree / "var" / "traction.sqlite"


def test_outside_a_source_tree_the_store_must_be_named(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SOURCE_TREE", tmp_path)  # no pyproject.toml here
    assert default_database_url() is None
    with pytest.raises(SettingMissing, match="^TRACTION_DATABASE_URL is not set: "):
        Settings.from_env({})
    named = Settings.from_env({"TRACTION_DATABASE_URL": "sqlite:////srv/traction.sqlite"})
    assert named.database_url == "sqlite:////srv/traction.sqlite"


def test_commands_find_the_default_store_from_any_directory(source_tree, tmp_path,
                                                           monkeypatch):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert run(["clinics", "add", "north-physio", "North Physio"]).exit_code == 0
    monkeypatch.chdir(second)
    listed = run(["clinics", "list"])
    assert listed.exit_code == 0
    assert listed.output == "north-physio\tNorth Physio\n"
    assert (source_tree / "var" / "traction.sqlite").is_file()
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []


@pytest.mark.parametrize("args", READING_COMMANDS, ids=" ".join)
def test_a_reading_command_names_the_missing_store_and_creates_nothing(elsewhere, args):
    answer = run(args, env={"TRACTION_DATABASE_URL": "sqlite:///var/ledger.sqlite",
                            "TRACTION_CHECKPOINT_KEY": "c3bc8b1fe3b809f97b286f03cd7a5277"
                                                       "fdb3febc5f6f14d4a039fec2e4247d2a",
                            # checkpoint needs both first
                            "TRACTION_CHECKPOINT_LOG": "/nonexistent/checkpoints.jsonl"})
    assert answer.exit_code == 1
    assert f"there is no store at sqlite:///{elsewhere}/var/ledger.sqlite" in answer.output
    assert "TRACTION_DATABASE_URL" in answer.output and "traction db init" in answer.output
    assert list(elsewhere.iterdir()) == []  # no file, no var/ directory


def test_a_file_without_the_tables_is_no_store_either(elsewhere):
    sqlite3.connect(elsewhere / "other.sqlite").close()
    answer = run(["audit", "verify"], env={"TRACTION_DATABASE_URL": "sqlite:///other.sqlite"})
    assert answer.exit_code == 1 and "(or it has no tables)" in answer.output


@pytest.mark.postgres
def test_a_postgresql_store_without_tables_is_named_without_its_password(postgres_url):
    with_password = postgres_url.replace("postgresql://postgres@",
                                         "postgresql://postgres:s3cret-pw@")
    answer = run(["clinics", "list"], env={"TRACTION_DATABASE_URL": with_password})
    assert answer.exit_code == 1
    assert "there is no store at postgresql://postgres@" in answer.output
    assert "s3cret-pw" not in answer.output


def test_revoke_given_a_whole_token_revokes_it_and_never_prints_the_secret(elsewhere):
    env = {"TRACTION_DATABASE_URL": "sqlite:///ledger.sqlite"}
    token = run(["tokens", "issue", "--role", "admin"], env=env).output.strip().splitlines()[-1]
    token_id, secret = token.removeprefix("tl_").split("_", 1)
    revoked = CliRunner().invoke(main, ["tokens", "revoke", token], env=env)
    assert revoked.exit_code == 0
    assert secret not in revoked.output
    assert f"its id is {token_id}" in revoked.output
    assert revoked.output.strip().endswith(f"revoked token {token_id}")
    again = run(["tokens", "revoke", token_id], env=env)
    assert again.exit_code == 0  # revoking twice is harmless


@pytest.mark.parametrize("given", ["tl_0123456789abcdef_tooShortSecret", "s3cret-ish-text"])
def test_revoke_given_something_else_explains_the_id_and_does_not_echo_it(elsewhere, given):
    env = {"TRACTION_DATABASE_URL": "sqlite:///ledger.sqlite"}
    run(["db", "init"], env=env)
    refused = run(["tokens", "revoke", given], env=env)
    assert refused.exit_code == 1
    assert given not in refused.output
    assert "16 hexadecimal characters after tl_" in refused.output
    unknown = run(["tokens", "revoke", "0123456789abcdef"], env=env)
    assert unknown.exit_code == 1 and "no token has the id 0123456789abcdef" in unknown.output
