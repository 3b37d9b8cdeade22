"""The eventsourcing library's recorder and application test cases, run against
our recorders (the ledger, the chain, gap-free positions, group commit) on a
real SQLite file and a real PostgreSQL schema.

Among them: a repeated version fails at once with IntegrityError (never a
retried OperationalError), writes are atomic, positions are contiguous and in
commit order under ten writing threads with two readers, and 100 threads
racing on one aggregate through the application's cache.
"""

from __future__ import annotations

import pytest
from eventsourcing.tests import application, persistence

from tests.storage.library_conformance import ApplicationOnOurStore, RecorderOnOurStore

pytestmark = pytest.mark.slow


class TestSQLiteRecorder(RecorderOnOurStore, persistence.ApplicationRecorderTestCase):
    kind = "sqlite"


class TestSQLiteNonInterleaving(RecorderOnOurStore,
                                persistence.NonInterleavingNotificationIDsBaseCase):
    kind = "sqlite"


class OurApplicationTestCase(ApplicationOnOurStore, application.ApplicationTestCase):
    __test__ = False  # a base: its subclasses name the store

    # It checks, inside warnings.catch_warnings(record=True), that a deprecated
    # attribute warns: under the suite's filterwarnings=error it would raise.
    @pytest.mark.filterwarnings("always::DeprecationWarning")
    def test_application_log(self) -> None:
        super().test_application_log()


class TestSQLiteApplication(OurApplicationTestCase):
    __test__ = True
    kind = "sqlite"


@pytest.mark.postgres
class TestPostgresRecorder(RecorderOnOurStore, persistence.ApplicationRecorderTestCase):
    kind = "postgres"


@pytest.mark.postgres
class TestPostgresNonInterleaving(RecorderOnOurStore,
                                  persistence.NonInterleavingNotificationIDsBaseCase):
    kind = "postgres"


@pytest.mark.postgres
class TestPostgresApplication(OurApplicationTestCase):
    __test__ = True
    kind = "postgres"
