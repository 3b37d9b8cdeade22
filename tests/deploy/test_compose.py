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


class Required(ValueError):
    """${NAME:?message} with NAME unset: `docker compose` stops with the message."""


#: The variables compose requires, and a value for each, for the checks below.
REQUIRED = {"TRACTION_DB_PASSWORD": "s3cret", "TRACTION_CHECKPOINT_KEY_FILE": "/etc/k.key"}


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${NAME:-default}, ${NAME:?message} and ${NAME} substitution, as
    `docker compose` does."""
    env = REQUIRED if env is None else env

    def substitute(match: re.Match) -> str:
        name, kind, rest = match.group(1), match.group(3), match.group(4) or ""
        if kind == ":?" and not env.get(name):
            raise Required(f"{name}: {rest}")
        return env.get(name) or (rest if kind == ":-" else "")

    return re.sub(r"\$\{(\w+)((:-|:\?)([^}]*))?\}", substitute, value)


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
    for env in (REQUIRED, {**REQUIRED, "TRACTION_DB_PASSWORD": "other"}):
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


def test_compose_stops_without_a_database_password_or_a_checkpoint_key():
    # No default password: `docker compose up` refuses to start, saying what to set.
    text = (DEPLOY / "compose.yaml").read_text()
    uncommented = "\n".join(line.split(" #")[0] for line in text.splitlines()
                            if not line.lstrip().startswith("#"))
    references = re.findall(r"\$\{[^}]*\}", uncommented)
    assert all(":-" in ref or ":?" in ref for ref in references)
    assert "traction}" not in uncommented and ":-traction" not in uncommented
    required = {re.match(r"\$\{(\w+)", ref).group(1) for ref in references if ":?" in ref}
    assert required == set(REQUIRED)
    for name in REQUIRED:
        with pytest.raises(Required, match=name):
            interpolate(uncommented, {k: v for k, v in REQUIRED.items() if k != name})
    interpolate(uncommented, REQUIRED)  # with both set, every reference resolves


def test_the_key_comes_from_a_secret_and_checkpoints_are_scheduled(compose):
    services = compose["services"]
    assert interpolate(compose["secrets"]["checkpoint_key"]["file"]) == "/etc/k.key"
    for name in ("api", "checkpoints"):
        service = services[name]
        assert service["secrets"] == ["checkpoint_key"]
        env = service["environment"]
        assert env["TRACTION_CHECKPOINT_KEY_FILE"] == "/run/secrets/checkpoint_key"
        assert "TRACTION_CHECKPOINT_KEY" not in env  # never the key itself
        log = env["TRACTION_CHECKPOINT_LOG"]
        mounts = dict(volume.split(":")[::-1] for volume in service["volumes"])
        assert mounts[str(Path(log).parent)] in compose["volumes"]
    shell = services["checkpoints"]["command"]
    assert shell[:2] == ["sh", "-c"]
    assert "traction audit checkpoint" in shell[2] and "sleep 900" in shell[2]
    assert shell[2].endswith("exit 1")  # a failed checkpoint stops the service, visibly
    command_resolves(["traction", "audit", "checkpoint"])
