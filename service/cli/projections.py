"""`traction projections …`: run, rebuild, status, retry, skip, digest."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import click

from projections.locks import LockHeld, ProjectionLock
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner, VersionSession
from projections.status import all_statuses
from projections.store import PROJECTIONS, UnknownProjection, check_name
from projections.upgrade import rebuild_outdated
from service.cli.context import components
from service.http.request_log import configure_logging

#: Exit status of `run --no-wait` when another runner is active.
EXIT_LOCK_HELD = 3


def _names(names: tuple[str, ...]) -> list[str]:
    try:
        return [check_name(name) for name in names] or list(PROJECTIONS)
    except UnknownProjection as error:
        raise click.BadParameter(str(error)) from None


@click.group()
def projections() -> None:
    """Read models: programme summaries, clinic dashboards and the network view."""


@projections.command("run")
@click.argument("names", nargs=-1)
@click.option("--once", is_flag=True, help="Catch up with the log, then exit.")
@click.option("--no-wait", is_flag=True,
              help=f"Exit with status {EXIT_LOCK_HELD} if another runner is active, "
              "instead of waiting as a standby.")
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=500, show_default=True,
              help="Most events per transaction.")
def run(names: tuple[str, ...], once: bool, no_wait: bool, batch_size: int) -> None:
    """Catch up, then follow new events (one active runner per projection)."""
    with components() as parts:
        # The service's log lines (JSON or text) on stderr.
        configure_logging(parts.settings.log_format, parts.settings.log_level)
        # Read models an older release built are rebuilt first, never written into.
        rebuild_outdated(parts.programmes, parts.read_models, parts.store)
        _run([ProjectionRunner(parts.programmes, parts.read_models, parts.store, name,
                               batch_size=batch_size) for name in _names(names)],
             once=once, wait_for_lock=not no_wait)


def _run(runners: list[ProjectionRunner], *, once: bool, wait_for_lock: bool) -> None:
    """Each runner in a thread of its own, until all stop (SIGTERM or SIGINT stops them)."""

    def stop(_signum: int, _frame: object) -> None:
        for runner in runners:
            runner.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures: list[BaseException] = []

    def work(runner: ProjectionRunner) -> None:
        try:
            runner.run(once=once, wait_for_lock=wait_for_lock)
        except BaseException as error:  # reported below, in the main thread
            failures.append(error)
            stop(0, None)

    threads = [threading.Thread(target=work, args=(r,), name=f"runner-{r.name}")
               for r in runners]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.2)
    for failure in failures:
        if isinstance(failure, LockHeld):
            click.echo(f"another runner is active for {failure} (see `traction projections "
                       "status`); not starting a second one", err=True)
            sys.exit(EXIT_LOCK_HELD)
        raise failure


@projections.command("rebuild")
@click.argument("names", nargs=-1)
@click.option("--batch-size", type=click.IntRange(100, 200_000), default=10_000,
              show_default=True, help="Events per transaction while rebuilding.")
@click.option("--grace", type=click.FloatRange(0), default=None,
              help="Seconds to keep the old version after the swap (default 5, or "
              "TRACTION_PROJECTION_DROP_GRACE).")
def rebuild_command(names: tuple[str, ...], batch_size: int, grace: float | None) -> None:
    """Build a new version from position 0 beside the live one, then swap it in."""
    with components() as parts:
        for name in _names(names):
            try:
                report = rebuild(parts.programmes, parts.read_models, parts.store, name,
                                 batch_size=batch_size,
                                 grace=parts.settings.projection_drop_grace
                                 if grace is None else grace)
            except LockHeld:
                raise click.ClickException(f"a rebuild of {name} is already running") from None
                click.echo(f"{name}: v{report.new_version} is live (was v{report.old_version}) "
                       f"at position {report.position}; {report.events} events in "
                       f"{report.seconds:.1f} s ({report.events_per_second:,.0f} events/s)")


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Each projection's live version, position, lag and failures."""
    with components() as parts:
        statuses = all_statuses(parts.programmes, parts.read_models, parts.store)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2, default=str))
        return
    click.echo(f"{'projection':<12} {'live':>5} {'position':>10} {'head':>10} "
               f"{'lag events':>10} {'lag s':>8}  {'runner':<12} failures")
    for s in statuses:
        failures = f"{len(s.poison)} poison, {s.held} held, {s.skipped} skipped"
        building = f" (building v{s.building_version})" if s.building_version else ""
        click.echo(f"{s.name:<12} {'v' + str(s.live_version):>5} {s.position:>10} "
                   f"{s.head:>10} {s.lag_events:>10} {s.lag_seconds:>8.2f}  "
                   f"{s.runner or '':<12} {failures}{building}")
        if s.runner_holder:
            click.echo(f"  active runner: {s.runner_holder}")
        for poison in s.poison:
            requested = f" [{poison['request']} requested]" if poison["request"] else ""
            click.echo(f"  poison at position {poison['position']} ({poison['event_type']}, "
                       f"programme {poison['programme_id']}): {poison['error']}{requested}")


def _resolve(name: str, position: int, action: str) -> None:
    name = _names((name,))[0]
    with components() as parts:
        application, read_models, store = parts.programmes, parts.read_models, parts.store
        version = read_models.versions(name)[0]
        target = next((p for p in read_models.parked(name, version)
                       if p["position"] == position), None)
        if target is None or target["kind"] != "poison":
            raise click.ClickException(f"no poison event of {name} is parked at position "
                                       f"{position} (see `traction projections status`)")
        lock = ProjectionLock(store, f"runner:{name}")
        if lock.try_acquire():
            # No runner is active: do it here.
            try:
                session = VersionSession(application, read_models, name, version)
                session.resolve(position, action)
            finally:
                lock.release()
        else:
            # The runner owns the read models' writes: ask it, and wait for it.
            read_models.request(name, version, position, action)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = {p["position"]: p for p in read_models.parked(name, version)}
                if position not in rows or rows[position]["request"] is None:
                    break
                time.sleep(0.2)
            else:
                raise click.ClickException("the runner has not acted on the request within "
                                           "30 s; it stays queued")
        rows = {p["position"]: p for p in read_models.parked(name, version)}
        remaining = [p for p in rows.values()
                     if p["programme_id"] == target["programme_id"] and p["kind"] == "poison"]
    done = "skipped" if action == "skip" else "applied"
    if remaining:
        first = remaining[0]
        click.echo(f"{name}: position {first['position']} still fails: {first['error']}")
        sys.exit(1)
    click.echo(f"{name}: position {position} {done}; programme {target['programme_id']} "
               "is live again")


@projections.command("retry")
@click.argument("name")
@click.argument("position", type=click.IntRange(1))
def retry(name: str, position: int) -> None:
    """Apply a parked poison event again (after a fix), then its programme's held events."""
    _resolve(name, position, "retry")


@projections.command("skip")
@click.argument("name")
@click.argument("position", type=click.IntRange(1))
def skip(name: str, position: int) -> None:
    """Give up on a parked poison event (recorded as skipped); apply the held ones after it."""
    _resolve(name, position, "skip")


@projections.command("digest")
@click.argument("names", nargs=-1)
def digest(names: tuple[str, ...]) -> None:
    """A digest of every row of each live read model (compare a restart with a rebuild)."""
    with components() as parts:
        for name in _names(names):
            version, position = parts.read_models.live_position(name)
            click.echo(f"{name} v{version} position {position} "
                       f"{parts.read_models.digest(name, version)}")
