"""Fixtures shared by the whole suite.

`store_url` runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL schema. PostgreSQL comes from TRACTION_TEST_POSTGRES_URL; without
it those tests skip, unless TRACTION_REQUIRE_POSTGRES=1 (as in CI), where a
missing server is a failure.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import Phase, settings

from tests.stores import components_at, initialise, throwaway_postgres_schema

# `make mutation` (tests/mutation/) runs the fast tests once per mutant with
# --hypothesis-profile=mutation: the same examples every time, no example
# database shared between mutants, and no shrinking (a failure is all it needs
# to know; shrinking one can take longer than the mutant's time limit).
settings.register_profile(
    "mutation", derandomize=True, database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)

POSTGRES_URL = os.environ.get("TRACTION_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("TRACTION_REQUIRE_POSTGRES") == "1"


def _postgres_base_url() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("TRACTION_REQUIRE_POSTGRES=1 but TRACTION_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need TRACTION_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/ledger.sqlite"


@pytest.fixture
def sqlite_statements(monkeypatch) -> list[str]:
    """The SQL (with its values) of every statement run on the SQLite connections
    opened from here on, in order: what a read or a write sent to the store."""
    sent: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(sent.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    return sent


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose schema is new and dropped afterwards."""
    with throwaway_postgres_schema(_postgres_base_url()) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request) -> str:
    """A fresh, empty store with its tables created: SQLite, then PostgreSQL."""
    url = request.getfixturevalue(f"{request.param}_url")
    initialise(url)
    return url


@pytest.fixture
def app(store_url):
    """The real Flask app on a fresh store (SQLite, then PostgreSQL)."""
    from service.http.app import create_app

    components = components_at(store_url)
    app = create_app(components)
    app.config["TESTING"] = True
    yield app
    components.close()


@pytest.fixture
def client(app):
    return app.test_client()


class Tokens:
    """Bearer headers for every role, for clinics `clinic-a` and `clinic-b`."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.records = {}
        for clinic_id, name in (("clinic-a", "Clinic A"), ("clinic-b", "Clinic B")):
            directory.add_clinic(clinic_id, name)
        self.writer_a = self.issue("writer", "clinic-a")
        self.writer_b = self.issue("writer", "clinic-b")
        self.viewer_a = self.issue("viewer", "clinic-a")
        self.viewer_b = self.issue("viewer", "clinic-b")
        self.viewer_all = self.issue("viewer", None)
        self.auditor = self.issue("auditor", None)
        self.admin = self.issue("admin", None)

    def issue(self, role: str, clinic_id: str | None, label: str = "") -> dict[str, str]:
        record, token = self.directory.issue_token(role, clinic_id, label or f"{role} test")
        headers = {"Authorization": f"Bearer {token}"}
        self.records[record.token_id] = record
        headers["X-Token-Id"] = record.token_id  # for tests only; the service ignores it
        return headers


@pytest.fixture
def tokens(app) -> Tokens:
    return Tokens(app.extensions["traction"].directory)
