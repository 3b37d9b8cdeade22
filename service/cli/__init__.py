"""The `traction` command line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from service.http.problems import STORE_ERRORS
from service.storage.database import Database
from service.storage.directory import ROLES, Directory, DirectoryError
from service.storage.schema import create_tables
from service.storage.settings import database_url, parse_database_url

#: deploy/ beside the packages (a source checkout or the container image).
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


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
@click.option("--no-demo", is_flag=True,
              help="Do not seed the demo into an empty store (use it in production).")
@click.option("--no-projections", is_flag=True,
              help="Do not start the projection runner (`traction projections run`) beside "
              "gunicorn.")
def serve(bind: str, workers: int | None, no_demo: bool, no_projections: bool) -> None:
    """Run the API under gunicorn with deploy/gunicorn.conf.py.

    On an empty store (no events, clinics or tokens) it first seeds the demo
    and prints tokens to look at it, unless --no-demo is given.
    """
    store = parse_database_url(database_url())
    # Tables are created here, once, before any worker starts.
    try:
        create_tables(store)
    except STORE_ERRORS as error:
        raise click.ClickException(f"cannot reach the {store.kind} store: {error}") from None
    if not no_demo:
        _seed_demo_if_empty(store)
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", str(DEPLOY_DIR / "gunicorn.conf.py"),
        "--bind", bind,
    ]
    if workers:
        command += ["--workers", str(workers)]
    command.append("service.wsgi:create_app()")
    click.echo(f"serving on http://{bind} ({store.kind} store)", err=True)
    # Workers share their metrics through files in this directory
    # (service/http/metrics.py). prometheus_client reads the variable when first
    # imported, so it is set before any child starts; a fresh directory per
    # run, so no count from an earlier run survives, removed on the way out.
    metrics_dir = tempfile.mkdtemp(prefix="traction-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    runner = None
    runner_command = [sys.executable, "-m", "service.cli", "projections", "run"]
    stopping = False
    try:
        server = subprocess.Popen(command)
        if not no_projections:
            # `traction projections run`, beside the API; stopped when gunicorn exits.
            runner = subprocess.Popen(runner_command)

        def stop(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True
            server.send_signal(signum)
            if runner is not None:
                runner.send_signal(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Supervise: as gunicorn restarts a dead worker, we restart a dead
        # projection runner (it resumes from its tracked position).
        while (status := server.poll()) is None:
            if runner is not None and runner.poll() is not None and not stopping:
                click.echo(f"projection runner exited ({runner.returncode}); restarting",
                           err=True)
                runner = subprocess.Popen(runner_command)
            time.sleep(0.5)
    finally:
        if runner is not None and runner.poll() is None:
            runner.terminate()
            try:
                runner.wait(timeout=15)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(status)


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


from service.cli.audit import audit  # noqa: E402 - the audit commands live in their package

main.add_command(audit)


# ---- the demo -------------------------------------------------------------------

from datetime import UTC, datetime  # noqa: E402 - the demo's section of this module

from service.demo.seeding import (  # noqa: E402
    DEFAULT_CLINICS,
    DEFAULT_PROGRAMMES,
    DEFAULT_SEED,
    DemoError,
    SeedReport,
    default_until,
    seed_demo,
    store_is_empty,
    token_table,
)
from service.demo.simulation import DEMO_UNTIL  # noqa: E402
from service.storage.settings import Store  # noqa: E402


class _Moment(click.ParamType):
    """An RFC 3339 date-time; without an offset it is taken as UTC."""

    name = "datetime"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a date-time like 2026-10-31T12:00:00Z", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.group()
def demo() -> None:
    """A simulated history of traction programmes, to try the service with."""


@demo.command("seed")
@click.option("--clinics", type=click.IntRange(1, 200), default=DEFAULT_CLINICS,
              envvar="TRACTION_DEMO_CLINICS", show_default=True,
              help="Demo clinics to register (env TRACTION_DEMO_CLINICS).")
@click.option("--programmes", type=click.IntRange(1, 100_000), default=DEFAULT_PROGRAMMES,
              envvar="TRACTION_DEMO_PROGRAMMES", show_default=True,
              help="Programmes per clinic (env TRACTION_DEMO_PROGRAMMES).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="The same seed gives the same events; seeding it again adds nothing.")
@click.option("--until", type=_Moment(), default=None,
              help=f"The simulation's \"now\" [default: {DEMO_UNTIL.isoformat()}, a fixed "
              "moment, so a seed always gives the same history].")
@click.option("--no-tokens", is_flag=True, help="Do not issue demo tokens.")
def demo_seed(clinics: int, programmes: int, seed: int, until: datetime | None,
              no_tokens: bool) -> None:
    """Post a realistic simulated history through the application layer.

    Registers the demo clinics (skipping those already registered), posts each
    programme's events in the batches a clinic system would send (home devices
    syncing late, corrections, pauses, discharges...), and issues demo tokens:
    an admin, an auditor, an all-clinic viewer, and a writer and a viewer per
    clinic.
    """
    store = parse_database_url(database_url())
    create_tables(store)
    try:
        report = seed_demo(store, clinics=clinics, programmes=programmes, seed=seed,
                           until=until, progress=True, issue_tokens=not no_tokens)
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    _print_seed_report(report)
    if report.refusals:
        raise click.ClickException(f"{len(report.refusals)} programmes were refused")


def _seed_demo_if_empty(store: Store) -> None:
    """Quick start: an empty store gets the demo, and the tokens to look at it."""
    if not store_is_empty(store):
        return
    click.echo("the store is empty: seeding the demo first (start with --no-demo to skip)",
               err=True)
    report = seed_demo(
        store,
        clinics=int(os.environ.get("TRACTION_DEMO_CLINICS") or DEFAULT_CLINICS),
        programmes=int(os.environ.get("TRACTION_DEMO_PROGRAMMES") or DEFAULT_PROGRAMMES),
        until=default_until(datetime.now(UTC)),
        progress=True,
    )
    _print_seed_report(report)


def _print_seed_report(report: SeedReport) -> None:
    registered = len(report.clinics_registered)
    clinics = registered + len(report.clinics_existing)
    click.echo(
        f"demo: {report.programmes} programmes in {clinics} clinic{'s' * (clinics != 1)} "
        f"({registered} newly registered); "
        f"{report.events_posted:,} events posted in {report.batches:,} batches, "
        f"{report.events_recorded:,} recorded"
        + (f", {report.batches_replayed:,} batches already recorded"
           if report.batches_replayed else "")
        + f"; {report.seconds:.1f} s"
    )
    for refusal in report.refusals:
        click.echo(f"refused: {refusal}", err=True)
    if report.tokens:
        click.echo("\ndemo tokens (shown once; send as 'Authorization: Bearer <token>'):")
        click.echo(token_table(report.tokens))
    # Written before gunicorn takes over the terminal (or the log), not at exit.
    sys.stdout.flush()


from service.cli.projections import projections  # noqa: E402 - the projection commands live in their package

main.add_command(projections)
