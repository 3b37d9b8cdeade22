"""deploy/compose.yaml: parsed (no Docker engine runs here) and checked for its wiring."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from click import Group

from service.cli import main
from service.storage.stores import parse_database_url

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${NAME:-default} and ${NAME} substitution, as `docker compose` does."""
    env = env or {}

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", substitute, value)


def command_resolves(command: list[str]) -> None:
    """The command names a `traction` subcommand, with options it has."""
    assert command[0] == "traction"
    group: Group = main
    words = command[1:]
    while words and isinstance(group, Group):
        name = words.pop(0)
        assert name in group.commands, f"`traction {name}` does not exist"
        group = group.commands[name]
    options = {opt for param in group.params for opt in param.opts}
    assert {w for w in words if w.startswith("--")} <= options


def test_postgres_is_15_with_a_volume_and_a_healthcheck(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:15")
    volume, _, path = postgres["volumes"][0].partition(":")
    assert path == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres  # only the API and the worker reach it


def test_api_waits_for_a_healthy_postgres_and_only_the_proxy_is_published(compose):
    services = compose["services"]
    api = services["api"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["db-init"]["condition"] == "service_completed_successfully"
    # gunicorn is never published: clients reach nginx, which reaches the API.
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert [interpolate(p) for p in proxy["ports"]] == ["127.0.0.1:8080:8080"]
    template, _, mounted = proxy["volumes"][0].partition(":")
    assert (DEPLOY / template).is_file() and mounted.startswith("/etc/nginx/templates/")
    assert proxy["environment"]["TRACTION_UPSTREAM"] == "api:8000"
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    # The API believes X-Forwarded-For from the proxy's fixed address, and only it.
    address = proxy["networks"]["traction"]["ipv4_address"]
    assert api["environment"]["TRACTION_TRUSTED_PROXIES"] == address
    subnet = compose["networks"]["traction"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert api["command"][:2] == ["traction", "serve"]
    # No demo in production; the worker below runs the projections.
    assert {"--no-demo", "--no-projections"} <= set(api["command"])
    command_resolves(api["command"])


def test_api_and_worker_share_one_store_url_that_points_at_the_postgres_service(compose):
    services = compose["services"]
    urls = {name: services[name]["environment"]["TRACTION_DATABASE_URL"]
            for name in ("api", "projections", "db-init")}
    assert len(set(urls.values())) == 1
    postgres = services["postgres"]["environment"]
    for env in ({}, {"TRACTION_DB_PASSWORD": "s3cret"}):
        store = parse_database_url(interpolate(urls["api"], env))
        assert store.is_postgres and store.pg_host == "postgres" and store.pg_port == 5432
        assert store.pg_user == postgres["POSTGRES_USER"]
        assert store.pg_password == interpolate(postgres["POSTGRES_PASSWORD"], env)
        assert store.pg_dbname == postgres["POSTGRES_DB"]


def test_the_worker_runs_the_projections(compose):
    worker = compose["services"]["projections"]
    assert worker["command"] == ["traction", "projections", "run"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["healthcheck"] == {"disable": True}  # the image's /healthz is the API's
    assert "ports" not in worker
    command_resolves(worker["command"])


def test_tables_are_created_once_before_api_and_worker_start(compose):
    init = compose["services"]["db-init"]
    assert init["command"] == ["traction", "db", "init"]
    assert init["restart"] == "no"
    assert init["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    command_resolves(init["command"])


def test_every_traction_service_builds_the_same_image_from_the_repository(compose):
    for name in ("api", "projections", "db-init"):
        build = compose["services"][name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert (context / "pyproject.toml").exists()


def test_no_variable_is_left_without_a_default():
    # `docker compose up` works with an empty environment.
    text = (DEPLOY / "compose.yaml").read_text()
    uncommented = "\n".join(line.split(" #")[0] for line in text.splitlines()
                            if not line.lstrip().startswith("#"))
    assert all(":-" in ref for ref in re.findall(r"\$\{[^}]*\}", uncommented))
