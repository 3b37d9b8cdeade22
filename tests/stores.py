"""Stores for tests and the soak: a throwaway PostgreSQL schema (made now and
dropped afterwards), and the service's parts on a test store, built by the
composition root as the service builds them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from domain.application import Programmes, utc_now
from projections.rebuild import RebuildReport, rebuild
from projections.runner import ProjectionRunner
from service.bootstrap import (
    Clock,
    Components,
    initialise_store,
    open_components,
    open_programmes,
)
from service.config import Settings
from service.storage.sealing import generate_kek
from service.storage.stores import parse_database_url

#: The key-encryption key of every test store: made for this run, and put in the
#: environment, so that the command line and the servers the tests start use it too.
TEST_DATA_KEY = os.environ.setdefault("TRACTION_DATA_KEY", generate_kek())


@contextmanager
def throwaway_postgres_schema(base_url: str, prefix: str = "test") -> Iterator[str]:
    """`base_url?schema=<new schema>`, dropped with everything in it on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    conninfo = parse_database_url(base_url).conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base_url}?schema={schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


#: The scrape token of every test app and server (TRACTION_METRICS_TOKEN), and the
#: header that shows it: what /metrics, and the detail of /readyz, need.
SCRAPE_TOKEN = "test-scrape-token-0123456789abcdef0123456789"
SCRAPE = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}


def settings_for(url: str, **overrides: object) -> Settings:
    """The settings of a test store (defaults otherwise, but for two: a read of a
    projection shows what the runner has just written, however soon after, as
    the tests expect (tests/projections/test_read_cache.py tests the staleness);
    and the scrape token is SCRAPE_TOKEN)."""
    return Settings(**{"database_url": url, "read_staleness": 0.0,  # type: ignore[arg-type]
                       "data_key": TEST_DATA_KEY, "metrics_token": SCRAPE_TOKEN, **overrides})


def initialise(url: str) -> None:
    """Create a test store's tables, as `traction db init` does."""
    initialise_store(settings_for(url))


def programmes_at(url: str, *, clock: Clock = utc_now, **overrides: Any) -> Programmes:
    """The application on a test store, built as the service builds it
    (`overrides`: settings other than the defaults)."""
    return open_programmes(settings_for(url, **overrides), clock=clock)


def components_at(url: str, *, clock: Clock = utc_now, **overrides: Any) -> Components:
    """The service's parts on a test store (close them afterwards)."""
    return open_components(settings_for(url, **overrides), clock=clock)


class RunnerAt(ProjectionRunner):
    """A projection runner with parts of its own on a test store, as
    `traction projections run` has them in its own process; closed when it stops."""

    def __init__(self, url: str, *args: Any, **kwargs: Any) -> None:
        self.components = components_at(url)
        super().__init__(self.components.programmes, self.components.read_models,
                         self.components.store, *args, **kwargs)

    def run(self, **kwargs: Any) -> None:
        try:
            super().run(**kwargs)
        finally:
            self.components.close()


def rebuild_at(url: str, *args: Any, **kwargs: Any) -> RebuildReport:
    """`traction projections rebuild` on a test store, with parts of its own."""
    components = components_at(url)
    try:
        return rebuild(components.programmes, components.read_models, components.store,
                       *args, **kwargs)
    finally:
        components.close()
