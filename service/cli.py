"""The `traction` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from service.storage.database import Database
from service.storage.directory import ROLES, Directory, DirectoryError
from service.storage.schema import create_tables
from service.storage.settings import database_url, parse_database_url

#: deploy/ beside the packages (a source checkout or the container image).
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"


@click.group()
def main() -> None:
    """Traction Ledger: the shared, event-sourced record of traction programmes."""


@main.group()
def db() -> None:
    """The event store."""


@db.command("init")
def db_init() -> None:
    """Create the store's tables (safe to run again)."""
    store = parse_database_url(database_url())
    create_tables(store)
    click.echo(f"store ready: {store.kind} {store.sqlite_path or store.pg_dbname}")


@main.command()
@click.option("--bind", default=lambda: os.environ.get("TRACTION_BIND", "127.0.0.1:8000"),
              show_default="127.0.0.1:8000", help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes (default: the core count).")
def serve(bind: str, workers: int | None) -> None:
    """Run the API under gunicorn with deploy/gunicorn.conf.py."""
    store = parse_database_url(database_url())
    # Tables are created here, once, before any worker starts.
    create_tables(store)
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", str(DEPLOY_DIR / "gunicorn.conf.py"),
        "--bind", bind,
    ]
    if workers:
        command += ["--workers", str(workers)]
    command.append("service.wsgi:create_app()")
    click.echo(f"serving on http://{bind} ({store.kind} store)", err=True)
    server = subprocess.Popen(command)

    def stop(signum: int, _frame: object) -> None:
        server.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.exit(server.wait())


def _directory() -> tuple[Directory, Database]:
    store = parse_database_url(database_url())
    create_tables(store)
    database = Database(store)
    return Directory(database), database


@main.group()
def clinics() -> None:
    """Registered clinics (the tenants)."""


@clinics.command("add")
@click.argument("clinic_id")
@click.argument("name")
def clinics_add(clinic_id: str, name: str) -> None:
    """Register a clinic: ID is a slug like north-physio, NAME is shown on dashboards."""
    directory, database = _directory()
    try:
        clinic = directory.add_clinic(clinic_id, name)
    except DirectoryError as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.close()
    click.echo(f"registered clinic {clinic['clinic_id']} ({clinic['name']})")


@clinics.command("list")
def clinics_list() -> None:
    """List registered clinics."""
    directory, database = _directory()
    try:
        for clinic in directory.clinics():
            click.echo(f"{clinic['clinic_id']}\t{clinic['name']}")
    finally:
        database.close()


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("issue")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--clinic", "clinic_id", default=None, help="The clinic it is for (writer, viewer).")
@click.option("--label", default="", help="Who or what uses it, shown in the access log.")
def tokens_issue(role: str, clinic_id: str | None, label: str) -> None:
    """Issue a token; it is printed once, alone on the last line."""
    directory, database = _directory()
    try:
        record, token = directory.issue_token(role, clinic_id, label)
    except DirectoryError as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.close()
    scope = record.clinic_id or "all clinics"
    click.echo(f"issued {record.role} token {record.token_id} for {scope}; "
               "store it now, it is not shown again:")
    click.echo(token)


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token (every worker refuses it within a second)."""
    directory, database = _directory()
    try:
        record = directory.revoke_token(token_id)
    except DirectoryError as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.close()
    click.echo(f"revoked token {record.token_id}")
