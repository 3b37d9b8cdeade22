"""deploy/*.service: `systemd-analyze verify` (when installed) and what they must say."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from service.storage.stores import parse_database_url
from tests.e2e.server import TRACTION

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("traction-api.service", "traction-projections.service")
CHECKPOINT_UNITS = ("traction-checkpoint.service", "traction-checkpoint.timer")
INSTALLED_TRACTION = "/opt/traction/.venv/bin/traction"


def directives(unit: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in (DEPLOY / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key].append(value)
    return sections


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path):
    # verify checks that ExecStart= programs exist: point them at this checkout's.
    for unit in UNITS + CHECKPOINT_UNITS:
        text = (DEPLOY / unit).read_text().replace(INSTALLED_TRACTION, TRACTION)
        (tmp_path / unit).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify",
                           *(str(tmp_path / u) for u in UNITS + CHECKPOINT_UNITS)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


@pytest.mark.parametrize("unit", UNITS)
def test_units_run_as_traction_hardened_and_restart_on_failure(unit):
    service = directives(unit)["Service"]
    assert service["User"] == ["traction"]
    assert service["EnvironmentFile"] == ["/etc/traction/traction.env"]
    assert service["Restart"] == ["on-failure"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes",
                       "ReadWritePaths": "/var/lib/traction"}.items():
        assert service[key] == [value], key
    assert directives(unit)["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_api_serves_without_the_demo_and_the_worker_runs_projections():
    api = directives("traction-api.service")["Service"]["ExecStart"][0].split()
    worker = directives("traction-projections.service")["Service"]["ExecStart"][0].split()
    assert api[:2] == [INSTALLED_TRACTION, "serve"]
    assert {"--no-demo", "--no-projections"} <= set(api)  # the worker runs the projections
    assert worker == [INSTALLED_TRACTION, "projections", "run"]


def test_the_example_environment_puts_sqlite_where_the_units_may_write():
    settings = {}
    for line in (DEPLOY / "traction.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    assert all(key.startswith("TRACTION_") for key in settings)
    store = parse_database_url(settings["TRACTION_DATABASE_URL"])
    writable = Path(directives("traction-api.service")["Service"]["ReadWritePaths"][0])
    assert store.sqlite_path is not None and store.sqlite_path.parent == writable


def test_checkpoints_are_scheduled_with_the_key_from_a_credential():
    timer = directives("traction-checkpoint.timer")
    assert timer["Timer"]["OnCalendar"] == ["*:0/15"] and timer["Timer"]["Persistent"] == ["yes"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    checkpoint = directives("traction-checkpoint.service")["Service"]
    assert checkpoint["Type"] == ["oneshot"] and checkpoint["User"] == ["traction"]
    assert checkpoint["ExecStart"] == [f"{INSTALLED_TRACTION} audit checkpoint"]
    for unit in ("traction-api.service", "traction-checkpoint.service"):
        service = directives(unit)["Service"]
        assert service["LoadCredential"] == ["checkpoint_key:/etc/traction/checkpoint.key"]
        assert "TRACTION_CHECKPOINT_KEY_FILE=%d/checkpoint_key" in service["Environment"]
        assert "TRACTION_CHECKPOINT_LOG=/var/log/traction/checkpoints.jsonl" in \
            service["Environment"]
        assert service["LogsDirectory"] == ["traction"]
        assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    example = (DEPLOY / "traction.env.example").read_text()
    assert "\nTRACTION_CHECKPOINT_KEY=" not in example  # the key is never in this file
