"""The `traction` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

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
