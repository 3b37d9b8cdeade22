"""`traction serve`: gunicorn with deploy/gunicorn.conf.py, and the projection runner beside it."""

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

from service.bootstrap import DEVELOPMENT_WARNING, check_keys, check_read_replica
from service.cli.context import components, initialised
from service.cli.demo import print_seed_report
from service.demo.seeding import default_until, seed_demo, store_is_empty
from service.storage.replica import ReplicaMisconfigured
from service.storage.sealing import KeyRefused

#: deploy/ beside the packages (a source checkout or the container image).
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


@click.command()
@click.option("--bind", default=None, show_default="127.0.0.1:8000 or TRACTION_BIND",
              help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes (default: TRACTION_WORKERS, or the core count).")
@click.option("--no-demo", is_flag=True,
              help="Do not seed the demo into an empty store (use it in production).")
@click.option("--no-projections", is_flag=True,
              help="Do not start the projection runner (`traction projections run`) beside "
              "gunicorn.")
def serve(bind: str | None, workers: int | None, no_demo: bool, no_projections: bool) -> None:
    """Run the API under gunicorn with deploy/gunicorn.conf.py.

    On an empty store (no events, clinics or tokens) it first seeds the demo
    and prints tokens to look at it, unless --no-demo is given.
    """
    # Tables are created here, once, before any worker starts; the key is checked
    # here too, so that a missing or wrong one stops the service before it forks.
    settings = initialised()
    try:
        keyring = check_keys(settings)
    except KeyRefused as error:
        raise click.ClickException(str(error)) from None
    if keyring.development:
        click.echo(f"WARNING: {DEVELOPMENT_WARNING}", err=True)
    try:
        warning = check_read_replica(settings)
    except ReplicaMisconfigured as error:
        raise click.ClickException(str(error)) from None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    bind = bind or settings.bind
    if not no_demo:
        _seed_demo_if_empty()
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", str(DEPLOY_DIR / "gunicorn.conf.py"),
        "--bind", bind,
        "--workers", str(workers or settings.workers),
        "service.wsgi:create_app()",
    ]
    click.echo(f"serving on http://{bind} ({settings.store.kind} store)", err=True)
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


def _seed_demo_if_empty() -> None:
    """Quick start: an empty store gets the demo, and the tokens to look at it."""
    with components(create=True) as parts:
        if not store_is_empty(parts):
            return
        click.echo("the store is empty: seeding the demo first (start with --no-demo to skip)",
                   err=True)
        report = seed_demo(
            parts,
            clinics=parts.settings.demo_clinics,
            programmes=parts.settings.demo_programmes,
            until=default_until(parts.programmes.clock()),
            progress=True,
        )
    print_seed_report(report)
