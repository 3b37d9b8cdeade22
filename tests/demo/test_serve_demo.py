"""Quick start: `traction serve` seeds an empty store and prints tokens to use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.demo.seeding import default_until, store_is_empty
from service.demo.simulation import CLINICS, simulate_programme
from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import parse_database_url
from tests.e2e.server import TRACTION, free_port
from tests.stores import components_at, initialise

pytestmark = pytest.mark.slow

#: A small demo, so the test stays quick (the same variables work for users).
SMALL_DEMO = {"TRACTION_DEMO_CLINICS": "1", "TRACTION_DEMO_PROGRAMMES": "3"}


def get(base: str, path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextmanager
def serving(database_url: str, tmp_path: Path, *args: str) -> Iterator[tuple[str, Path]]:
    """`traction serve` on a free port, its standard output kept in a file."""
    port = free_port()
    output = tmp_path / f"serve-{port}.out"
    env = {**os.environ, **SMALL_DEMO, "TRACTION_DATABASE_URL": database_url}
    with output.open("w") as stdout:
        process = subprocess.Popen(
            [TRACTION, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1", *args],
            env=env, stdout=stdout, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(base, "/healthz")[0] == 200:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serve did not start: "
                                       + process.stderr.read().decode()) from None
                time.sleep(0.1)
        yield base, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stderr.close()


def printed_tokens(output: str) -> dict[tuple[str, str], str]:
    """(role, scope) -> token, from the table serve prints."""
    return {(m[1], m[2]): m[3] for m in re.finditer(
        r"^(admin|auditor|writer|viewer)\s+(all clinics|[a-z0-9-]+)\s+.*?(tl_\S+)$",
        output, re.MULTILINE)}


def test_serve_seeds_an_empty_store_and_prints_tokens_that_work(sqlite_url, tmp_path):
    with serving(sqlite_url, tmp_path) as (base, output):
        text = output.read_text()
        tokens = printed_tokens(text)
        assert "demo: 3 programmes in 1 clinic (1 newly registered)" in text
        assert set(tokens) == {("admin", "all clinics"), ("auditor", "all clinics"),
                               ("viewer", "all clinics"), ("writer", "harbour-spine"),
                               ("viewer", "harbour-spine")}
        status, clinics = get(base, "/v1/clinics", tokens[("admin", "all clinics")])
        assert status == 200 and "harbour-spine" in json.dumps(clinics)
        first = simulate_programme(1, CLINICS[0], 0, default_until(datetime.now(UTC)))
        status, state = get(base, f"/v1/clinics/harbour-spine/programmes/{first.programme_id}",
                            tokens[("writer", "harbour-spine")])
        assert status == 200 and state["version"] >= 2

    # Started again, the store is no longer empty: no second demo.
    with serving(sqlite_url, tmp_path) as (_, output):
        assert "demo" not in output.read_text()


def test_serve_with_no_demo_leaves_an_empty_store_empty(sqlite_url, tmp_path):
    with serving(sqlite_url, tmp_path, "--no-demo") as (_, output):
        assert printed_tokens(output.read_text()) == {}
    components = components_at(sqlite_url)
    try:
        assert store_is_empty(components)
    finally:
        components.close()


def test_serve_never_seeds_a_store_that_is_being_bootstrapped(sqlite_url, tmp_path):
    # The README's bootstrap: an admin token first, then `traction serve`.
    store = parse_database_url(sqlite_url)
    initialise(sqlite_url)
    database = Database(store)
    try:
        Directory(database).issue_token("admin", None, "ops")
    finally:
        database.close()
    with serving(sqlite_url, tmp_path) as (_, output):
        assert printed_tokens(output.read_text()) == {}
    database = Database(store)
    try:
        assert Directory(database).clinics() == []
    finally:
        database.close()
