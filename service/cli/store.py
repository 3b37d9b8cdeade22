"""`traction migrate`: upgrading a store to this release (backup and restore: later)."""

from __future__ import annotations

import click

from projections.summaries import STATE_FORMAT
from projections.upgrade import outdated, rebuild_outdated
from service.cli.context import components, settings, store_errors
from service.storage import migrations


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be done, and do nothing.")
def migrate(dry_run: bool) -> None:
    """Upgrade the store to this release: its pending schema steps, each in a transaction,
    then a rebuild of read models an older release built. Back it up first."""
    current = settings()
    store = current.store
    with store_errors(current):
        before, steps = migrations.migrate(store, dry_run=dry_run)
    where = ("empty" if before.empty else "written by release 0.1.0" if before.unrecorded
             else f"at schema {before.revision}")
    click.echo(f"the store ({store.kind}) is {where}; this release's schema is {before.head}")
    for step in steps:
        done = "would run" if dry_run else "ran"
        already = " (its tables are there already)" if before.unrecorded and step.revision == \
            "0001" else ""
        click.echo(f"  {done} {step.revision}: {step.description}{already}")
    if not steps:
        click.echo("  no schema steps to run")
    if dry_run:
        if before.empty or before.unrecorded or before.revision == "0001":
            # Read models before schema 0002 record no format: 0.1.0 built them, format 1.
            old = {} if STATE_FORMAT == 1 else {"dashboards": 1}
        else:
            with components(initialise=False, check_schema=False) as parts:
                old = outdated(parts.read_models)
        for name, state_format in old.items():
            click.echo(f"  would rebuild the {name} read models (format {state_format} -> "
                       f"{STATE_FORMAT}), beside the live ones")
        return
    with components(initialise=False) as parts:
        for report in rebuild_outdated(parts.programmes, parts.read_models, parts.store,
                                       progress=True):
            click.echo(f"  rebuilt the {report.name} read models: v{report.new_version} at "
                       f"position {report.position}")
    click.echo("the store is up to date")
