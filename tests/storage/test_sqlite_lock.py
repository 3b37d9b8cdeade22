"""The SQLite write lock finds the file of a database however the library names it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.storage.sqlite_lock import database_file, write_lock


@pytest.mark.parametrize("name", [":memory:", "file::memory:?cache=shared",
                                  "file:ledger?mode=memory&cache=shared"])
def test_an_in_memory_database_is_locked_in_this_process_only(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert database_file(name) is None
    with write_lock(name).held():
        pass
    assert list(tmp_path.iterdir()) == [], "a lock file was made for a database in memory"


def test_a_file_uri_locks_beside_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "ledger.sqlite"
    name = f"file:{database}?mode=rwc"
    assert database_file(name) == database
    with write_lock(name).held():
        assert os.path.exists(f"{database}-writelock")
    assert write_lock(name) is write_lock(database), "one lock per file, however named"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite-writelock"]


def test_a_path_is_a_path():
    assert database_file("var/traction.sqlite") == Path("var/traction.sqlite")
