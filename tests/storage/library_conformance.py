"""Our recorders under the eventsourcing library's own conformance tests.

The library's test cases (`eventsourcing.tests.persistence`,
`eventsourcing.tests.application`) save events with no ledger entries, and
our recorders refuse such a save. The adapters here give each stored event a
ledger entry (a fresh event_id, so a repeated version conflicts on the
ledger's `(programme_id, version)` key as well as on the events table's), and
are otherwise our recorders, unchanged, on a real SQLite file or a real
PostgreSQL schema made for each test and dropped after it.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import SkipTest, mock

from eventsourcing.persistence import InfrastructureFactory, StoredEvent

from domain.ledger import LedgerEntry
from service.storage.postgres import LedgerPostgresRecorder
from service.storage.sqlite import LedgerSQLiteRecorder
from service.storage.stores import StoreOptions, eventsourcing_env, parse_database_url
from tests.stores import initialise, throwaway_postgres_schema

#: The library's own test settings for the pool (its defaults): its contention
#: tests run 100 threads against one application.
LIBRARY_POOL = StoreOptions(pg_pool_size=5, pg_max_overflow=10, pg_connect_timeout=30)


class WithLedgerEntries:
    """Supplies the ledger entries the library's tests do not pass."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if "ledger" not in kwargs:
            kwargs["ledger"] = [LedgerEntry(uuid.uuid4(), "conformance", "LibraryTestEvent", None)
                                for _ in stored_events]
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]


class SQLiteRecorderWithLedgerEntries(WithLedgerEntries, LedgerSQLiteRecorder):
    pass


class PostgresRecorderWithLedgerEntries(WithLedgerEntries, LedgerPostgresRecorder):
    pass


ADAPTERS = {
    "sqlite": f"{__name__}:{SQLiteRecorderWithLedgerEntries.__name__}",
    "postgres": f"{__name__}:{PostgresRecorderWithLedgerEntries.__name__}",
}


def postgres_base_url() -> str:
    """The test server (as tests/conftest.py finds it); skips the test without one."""
    url = os.environ.get("TRACTION_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("TRACTION_REQUIRE_POSTGRES") == "1":
            raise AssertionError("TRACTION_REQUIRE_POSTGRES=1 but no TRACTION_TEST_POSTGRES_URL")
        raise SkipTest("PostgreSQL tests need TRACTION_TEST_POSTGRES_URL")
    return url


@contextmanager
def fresh_store(kind: str) -> Iterator[dict[str, str]]:
    """A new, empty store with our tables; yields the library's settings for it,
    with our recorder (adapted) as the application recorder."""
    with ExitStack() as stack:
        if kind == "sqlite":
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{folder}/conformance.sqlite"
        else:
            url = stack.enter_context(throwaway_postgres_schema(postgres_base_url(),
                                                                prefix="conformance"))
        initialise(url)
        env = eventsourcing_env(parse_database_url(url, LIBRARY_POOL))
        # The library's test applications have names (and tables) of their own,
        # which no migration of ours makes: let the library create them.
        env["CREATE_TABLE"] = "y"
        # The library's tests set their own caching: only the store is ours.
        env = {k: v for k, v in env.items() if not k.startswith("AGGREGATE_CACHE")}
        env["APPLICATION_RECORDER_TOPIC"] = ADAPTERS[kind]
        yield env


class OnOurStore:
    """Mix into a library test case before it: each test on a fresh store of `kind`."""

    kind = "sqlite"

    def setUp(self) -> None:
        self._threads = set(threading.enumerate())
        self._stack = ExitStack()
        self.env = self._stack.enter_context(fresh_store(self.kind))
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
        finally:
            # Some of the library's tests leave their reader threads to stop by
            # themselves: closing the store under a query of theirs would crash.
            for thread in set(threading.enumerate()) - self._threads:
                if not thread.daemon:
                    thread.join(timeout=10)
            self._stack.close()


class RecorderOnOurStore(OnOurStore):
    """For the recorder test cases: `create_recorder()` gives our recorder."""

    def create_recorder(self) -> Any:
        factory = InfrastructureFactory.construct(self.env)
        self._stack.callback(factory.close)
        return factory.application_recorder()


class ApplicationOnOurStore(OnOurStore):
    """For the application test cases, which build `Application()` from the
    environment as the library's own test suite does."""

    def setUp(self) -> None:
        super().setUp()
        self._stack.enter_context(mock.patch.dict(os.environ, self.env))
