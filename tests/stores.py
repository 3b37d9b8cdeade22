"""Throwaway stores for tests and the soak: a PostgreSQL schema made now and
dropped afterwards (the one place that knows how)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from service.storage.settings import parse_database_url


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
