"""A SQLite store is created readable by its owner alone: the file and the
-wal and -shm files beside it (0600), whatever the process's umask."""

from __future__ import annotations

import os
import stat
import uuid

from service.http.app import create_app
from tests import builders as b
from tests.stores import components_at, initialise


def test_a_new_sqlite_store_and_its_journal_are_private(tmp_path):
    previous = os.umask(0o022)  # the usual umask: files readable by everyone
    try:
        path = tmp_path / "var" / "ledger.sqlite"
        url = f"sqlite:///{path}"
        initialise(url)
        components = components_at(url)
        try:
            components.directory.add_clinic("clinic-a", "Clinic A")
            app = create_app(components)
            _, writer = components.directory.issue_token("writer", "clinic-a", "t")
            answer = app.test_client().post(
                f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events", json=b.started(),
                headers={"Authorization": f"Bearer {writer}"})
            assert answer.status_code == 201
            files = sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name))
            assert {p.name for p in files} >= {path.name, f"{path.name}-wal",
                                               f"{path.name}-shm"}
            modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
            assert set(modes.values()) == {"0o600"}, modes
        finally:
            components.close()
    finally:
        os.umask(previous)
