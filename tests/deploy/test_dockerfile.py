"""deploy/Dockerfile: checked as text (no Docker engine runs on these machines)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from service.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in joined.splitlines() if line.strip()]


def test_slim_python_311_base_and_a_non_root_user():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    names = [name for name, _ in steps]
    assert names.index("USER") < names.index("CMD")


def test_the_package_is_installed_with_deploy_beside_it():
    steps = instructions()
    copied = [args.split()[0] for name, args in steps if name == "COPY"]
    assert {"domain/", "service/", "projections/", "deploy/", "pyproject.toml"} <= set(copied)
    # serve runs gunicorn with deploy/gunicorn.conf.py beside the packages.
    assert any(name == "RUN" and "pip install -e ." in args for name, args in steps)


def test_the_context_ignore_file_keeps_what_is_copied():
    rules = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    kept = {rule[1:] for rule in rules if rule.startswith("!")}
    copied = {path for name, args in instructions() if name == "COPY"
              for path in args.split()[:-1]}
    assert copied <= kept


def test_healthcheck_calls_healthz_with_python_alone():
    (check,) = [args for name, args in instructions() if name == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3:])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "http://127.0.0.1:8000/healthz" in command[2]
    compile(command[2], "healthcheck", "exec")


def test_cmd_serves_on_all_interfaces_without_the_demo():
    (cmd,) = [args for name, args in instructions() if name == "CMD"]
    command = json.loads(cmd)
    assert command == ["traction", "serve", "--bind", "0.0.0.0:8000", "--no-demo"]
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert all(word in help_text for word in command[2:] if word.startswith("--"))
