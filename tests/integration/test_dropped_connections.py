"""Reads survive pooled PostgreSQL connections that died (a database restart).

Event-store reads and the API's read-model reads alike.

PRE_PING is off (service/storage/stores.py), so the pool hands out a
connection the server has since closed. The library's own reads retry once
that fails; ours (history, log rows, ledger and audit queries, dashboards
and summaries) must too, or the first read on each worker after a restart
is a 503.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from domain.application import Programmes
from projections.store import DEFAULT_PROJECTION, open_read_models
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.integration.writers import envelope
from tests.stores import RunnerAt, initialise, programmes_at

pytestmark = pytest.mark.postgres


def _kill_pooled_connections(app: Programmes, url: str) -> int:
    """Terminate, on the server, every idle connection in the app's pool."""
    pids = [connection.info.backend_pid for connection in app.recorder.datastore.pool._pool]
    with psycopg.connect(parse_database_url(url).conninfo(), autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(pids)


def test_our_reads_reconnect_after_the_server_closed_pooled_connections(postgres_url):
    initialise(postgres_url)
    app = programmes_at(postgres_url)
    try:
        pid = uuid.uuid4()
        app.record_events("clinic-a", pid, [envelope(b.started()), envelope(b.session(1))])
        RunnerAt(postgres_url).run(once=True)
        read_models = open_read_models(app)  # on the application's connections
        reads = {
            "history": lambda: len(app.history("clinic-a", pid)),
            "log rows": lambda: len(app.recorder.log_rows(0, 10)),
            "ledger entries": lambda: len(app.ledger.entries_of_programme(pid)),
            "version as of": lambda: app.ledger.version_as_of(pid, datetime.now(UTC)),
            "chain extent": lambda: app.recorder.chain_extent(),
            "dashboard": lambda: read_models.clinic_dashboard(DEFAULT_PROJECTION, "clinic-a"),
            "summary": lambda: read_models.summary(DEFAULT_PROJECTION, "clinic-a", str(pid)),
            "summaries": lambda: read_models.summaries_page(DEFAULT_PROJECTION, "clinic-a",
                                                            None, None, 10),
            "network": lambda: read_models.network(DEFAULT_PROJECTION),
        }
        expected = {name: read() for name, read in reads.items()}
        assert expected["history"] == 2
        for name, read in reads.items():
            assert _kill_pooled_connections(app, postgres_url) >= 1
            assert read() == expected[name], name
    finally:
        app.close()
