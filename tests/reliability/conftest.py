"""Fixtures for the reliability tests: a live service per module and store.

Starting `traction serve` costs seconds (every worker imports and builds the
app), so the tests of one module share one server on one fresh store, and
each test works on programmes of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import _postgres_base_url
from tests.reliability.live import LiveServer, Tokens, live_service
from tests.stores import throwaway_postgres_schema


@dataclass
class Live:
    database_url: str
    server: LiveServer
    tokens: Tokens


@pytest.fixture(scope="module")
def module_store_url(request, tmp_path_factory) -> Iterator[str]:
    """A fresh store for one module: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store')}/ledger.sqlite"
        return
    with throwaway_postgres_schema(_postgres_base_url()) as url:
        yield url


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def live(module_store_url) -> Iterator[Live]:
    """`traction serve` with 2 workers on the module's store, clinics and tokens ready."""
    with live_service(module_store_url, workers=2) as (server, tokens):
        yield Live(module_store_url, server, tokens)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses the module's store runs once per store.
    if "module_store_url" in metafunc.fixturenames:
        metafunc.parametrize("module_store_url", STORES, indirect=True, scope="module")
