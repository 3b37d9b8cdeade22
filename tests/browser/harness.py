"""What the browser tests share: the demo service, a browser tab, and the numbers
the pages must show, computed here independently of the pages' JavaScript.

The fixtures that build them are in conftest.py.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server
from tests.stores import SCRAPE_TOKEN

CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("TRACTION_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
DOCS_SCREENSHOT = ROOT / "docs" / "clinic-view.png"
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
#: The demo's clinics: the first is looked at, the second is the "foreign" one.
CLINIC, FOREIGN = "harbour-spine", "lindenweg-physio"
POLL_MS = 1000  # the live test's poll; the pages default to 5 s
Z95 = 1.959963984540054


def unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"TRACTION_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


# ---- the service, seeded with the demo -------------------------------------------

def printed_tokens(output: str) -> dict[tuple[str, str], str]:
    """(role, scope) -> token, from the table `traction demo seed` prints."""
    return {(m[1], m[2]): m[3] for m in re.finditer(
        r"^(admin|auditor|writer|viewer)\s+(all clinics|[a-z0-9-]+)\s+.*?(tl_\S+)$",
        output, re.MULTILINE)}


def drain(stream: Any, path: Path) -> None:
    """Keep reading the server's log so its pipe never fills (and keep it as an artifact)."""
    try:
        with path.open("wb") as log:
            for line in iter(stream.readline, b""):
                log.write(line)
    except (OSError, ValueError):
        pass  # the pipe was closed by Server.stop()


@dataclass
class Demo:
    server: Server
    tokens: dict[tuple[str, str], str]

    @property
    def base(self) -> str:
        return self.server.base

    def token(self, role: str, scope: str = "all clinics") -> str:
        return self.tokens[(role, scope)]

    def get(self, path: str, token: str) -> tuple[Any, dict[str, str]]:
        status, body, headers = self.server.request("GET", path, token=token)
        assert status == 200, (path, status, body)
        return body, headers

    def post(self, path: str, body: Any, token: str) -> Any:
        status, answer, _ = self.server.request("POST", path, body, token=token)
        assert status in (200, 201), (path, status, answer)
        return answer

    def summaries(self, clinic: str, token: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page, _ = self.get(f"/v1/clinics/{clinic}/programmes?limit=500{cursor}", token)
            items += page["programmes"]
            if not page["next"]:
                return items
            cursor = f"&cursor={page['next']}"


def wait_caught_up(server: Server, timeout: float = 30) -> None:
    """Until every projection has processed the whole log."""
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = server.request("GET", "/readyz", token=SCRAPE_TOKEN)
        projections = (body or {}).get("projections") or []
        if status == 200 and projections and all(
                p["position"] == p["head"] > 0 for p in projections):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the projections did not catch up: {body}")
        time.sleep(0.2)


# ---- pages ----------------------------------------------------------------------

@dataclass
class Tab:
    """A page, with what its console said and what it asked for."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def open(self, path: str, state: str = "ready") -> None:
        self.page.goto(self.base + path)
        self.wait_state(state)

    def wait_state(self, state: str, timeout: float = 15_000) -> None:
        # A selector, not wait_for_function: the pages' CSP forbids eval.
        self.page.wait_for_selector(f"body[data-state={state}]", state="attached",
                                    timeout=timeout)

    def chart(self, canvas_id: str) -> dict[str, Any] | None:
        return self.page.evaluate(
            """id => {
                const chart = Chart.getChart(document.getElementById(id));
                if (!chart) return null;
                return {
                    type: chart.config.type,
                    labels: chart.data.labels,
                    datasets: chart.data.datasets.map(d => ({
                        label: d.label, data: d.data, intervals: d.intervals || null,
                        counts: d.counts || null})),
                    markers: (chart.options.plugins.tractionMarkers || {}).lines || null,
                };
            }""", canvas_id)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def screenshot(self, name: str, **kwargs: Any) -> Path:
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), **kwargs)
        return path


# ---- the numbers the pages must show, computed here independently -----------------

def wilson(k: int, n: int) -> tuple[float, float] | None:
    if not n:
        return None
    p, zz = k / n, Z95 * Z95
    denominator = 1 + zz / n
    centre = (p + zz / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + zz / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def until(condition: Callable[[], Any], timeout: float = 20, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message}")
        time.sleep(0.2)
