"""The README's shell blocks, run as written, top to bottom, against a fresh server.

Each ```sh block runs in one bash session, in order, so the variables an earlier
block sets ($ADMIN, $WRITER, $API...) are there for the later ones, exactly as
for a reader pasting them into one terminal. The server is `traction serve`
(gunicorn and the projection runner) on a new SQLite store in a temporary
directory, which is also where the blocks run (`.venv` there is this test's
virtualenv). Only `localhost:8000` is changed, to the server's free port.
Blocks that cannot run here (make, Docker, systemd) follow a line
`<!-- not run by tests/docs/test_readme.py: why -->`.

curl runs with --fail-with-body, so an answer of 4xx or 5xx fails the block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)^```$", re.S | re.M)
SKIP = "<!-- not run by tests/docs/test_readme.py"
#: Set before the blocks: stop at the first failing command; a curl answer of
#: 4xx or 5xx is a failure (the README uses -s, which hides it otherwise).
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --show-error "$@"; }
"""


def shell_blocks() -> list[tuple[str, bool]]:
    """Every ```sh block of the README, and whether the test runs it."""
    return [(m["body"], not m["before"].startswith(SKIP))
            for m in BLOCK.finditer(README.read_text())]


def test_the_readme_has_runnable_blocks_and_says_why_the_others_are_not_run():
    blocks = shell_blocks()
    assert sum(runs for _, runs in blocks) >= 6
    skipped = [body for body, runs in blocks if not runs]
    assert any("make run" in body for body in skipped)
    assert any("docker compose" in body for body in skipped)
    text = "\n".join(body for body, runs in blocks if runs)
    assert "jq" not in text.split(), "jq is not on every machine: use python3"
    assert not re.search(r"^traction ", text, re.M), "the CLI is .venv/bin/traction"


def test_the_readme_s_shell_blocks_run_top_to_bottom_against_a_fresh_server(tmp_path):
    store = f"sqlite:///{tmp_path}/var/traction.sqlite"
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    server = Server(store, 2)
    try:
        address = server.base.removeprefix("http://")
        script = PRELUDE + "\n".join(
            body.replace("localhost:8000", address) for body, runs in shell_blocks() if runs)
        script += '\necho "programme=$P viewer=$VIEWER"\n'
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600,
                              env={**os.environ, "TRACTION_DATABASE_URL": store})
        assert done.returncode == 0, (
            f"a README block failed ({done.returncode}):\n{done.stderr[-3000:]}\n"
            f"--- output ---\n{done.stdout[-3000:]}")
        left = dict(item.split("=", 1) for item in done.stdout.splitlines()[-1].split())
        # What the blocks did is in the store: the programme as the README left it.
        status, state, _ = server.request(
            "GET", f"/v1/clinics/north-physio/programmes/{left['programme']}",
            token=left["viewer"])
        assert status == 200 and state["version"] == 6 and state["corrections"] == 1
        # The FHIR section's transaction recorded a pain report and a session.
        assert (state["pain_reports"], state["sessions_completed"]) == (2, 2)
        assert '"transaction-response"' in done.stdout
        # The Bulk export's first file, fetched with the token: FHIR resources, one a line.
        first = (tmp_path / "first.ndjson").read_text().splitlines()
        assert first and all('"resourceType"' in line for line in first)
        assert (tmp_path / "log.jsonl").stat().st_size > 0
        assert (tmp_path / "north.jsonl").stat().st_size > 0
        assert '"latest_pain": 4' in done.stdout or '"latest_pain":4' in done.stdout
    finally:
        server.stop()
