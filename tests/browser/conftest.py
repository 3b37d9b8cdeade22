"""Fixtures of the browser tests: Debian's headless Chromium, driven by Playwright,
against one `traction serve` (gunicorn and the projection runner) on a store
seeded by `traction demo seed`, per test session; a fresh browser context per test.

The browser is the system's /usr/bin/chromium (never `playwright install`):
without it these tests skip, unless TRACTION_REQUIRE_BROWSER=1 (as in CI),
where that fails.

Screenshots go to tests/artifacts/browser/ (gitignored). The clinic view's
screenshot is also docs/clinic-view.png (shown by the README): it is written
when missing or when TRACTION_UPDATE_SCREENSHOTS=1, so an ordinary run never
changes a committed file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.demo.seeding import default_until
from tests.browser.harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CLINIC,
    FOREIGN,
    LAPTOP,
    Demo,
    Tab,
    drain,
    printed_tokens,
    unavailable,
    wait_caught_up,
)
from tests.e2e.server import Server, traction


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_api) -> Iterator[Any]:
    browser = playwright_api.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class ReadServer(Server):
    drain_stderr = False  # the fixture below copies it to an artifact


@pytest.fixture(scope="session")
def demo(tmp_path_factory, playwright_api) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("browser-store")
    url = f"sqlite:///{directory}/ledger.sqlite"
    until = default_until(datetime.now(UTC)).isoformat()
    output = traction(url, "demo", "seed", "--clinics", "2", "--programmes", "15",
                      "--until", until)
    tokens = printed_tokens(output)
    assert (("viewer", CLINIC) in tokens and ("viewer", FOREIGN) in tokens), output
    server = ReadServer(url, 2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    reader = threading.Thread(target=drain, daemon=True,
                              args=(server.process.stderr, ARTIFACTS / "server.log"))
    reader.start()
    try:
        wait_caught_up(server)
        yield Demo(server, tokens)
    finally:
        server.stop()
        reader.join(timeout=5)


@pytest.fixture
def new_tab(browser, demo) -> Iterator[Callable[..., Tab]]:
    contexts = []

    def make(token: str | None = None, scope: dict[str, Any] | None = None,
             viewport: dict[str, int] = LAPTOP, poll_ms: int | None = None) -> Tab:
        context = browser.new_context(viewport=viewport, reduced_motion="reduce")
        contexts.append(context)
        # The pages read the token from this tab's sessionStorage, as after signing in
        # (and, for the live test, a shorter poll than the default 5 s).
        setup = f"sessionStorage.setItem('traction.pollMs', '{poll_ms}');" if poll_ms else ""
        if token:
            setup += (f"sessionStorage.setItem('traction.token', {token!r});"
                      f"sessionStorage.setItem('traction.scope', {repr(json.dumps(scope or {}))});")
        context.add_init_script(setup)
        tab = Tab(context.new_page(), demo.base)
        tab.page.on("console", lambda message: message.type == "error"
                    and tab.errors.append(message.text))
        tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
        tab.page.on("request", lambda request: tab.requests.append(request))
        tab.page.on("response", lambda response: tab.responses.append(response))
        return tab

    yield make
    for context in contexts:
        context.close()


