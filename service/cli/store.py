"""`traction migrate`, `backup`, `restore`: upgrading a store, and copies of it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from projections.rebuild import rebuild
from projections.store import PROJECTIONS
from projections.summaries import STATE_FORMAT
from projections.upgrade import outdated, rebuild_outdated
from service.audit.log import audit_recorder
from service.audit.reseal import RewriteRefused, seal_recorded
from service.audit.verify import verify_store
from service.cli.context import components, settings, store_errors
from service.storage import backup as backups
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
            with components(check_schema=False) as parts:
                old = outdated(parts.read_models)
        for name, state_format in old.items():
            click.echo(f"  would rebuild the {name} read models (format {state_format} -> "
                       f"{STATE_FORMAT}), beside the live ones")
        if migrations.KEY_TABLES_REVISION in {step.revision for step in steps}:
            click.echo("  would seal every personal field recorded in the clear (a signed "
                       "statement of the rewritten chain heads; needs TRACTION_DATA_KEY), "
                       "rebuild the read models and compact the store")
        return
    with components() as parts:
        assert parts.keyring is not None
        try:
            rewrite = seal_recorded(parts.programmes, parts.keyring, parts.database,
                                    parts.checkpoints, parts.checkpoint_keys,
                                    parts.checkpoint_log)
        except RewriteRefused as error:
            raise click.ClickException(str(error)) from None
        rebuilt = set()
        if rewrite is not None:
            signed = "signed" if rewrite.signature else "UNSIGNED (no TRACTION_CHECKPOINT_KEY)"
            click.echo(f"  sealed the personal fields of {rewrite.events_sealed} events "
                       f"recorded in the clear; the chain from position "
                       f"{rewrite.first_position} was rehashed: head {rewrite.head_position} "
                       f"{rewrite.old_head_hash} -> {rewrite.new_head_hash} ({signed} "
                       "statement; `traction audit verify` shows it)")
            # The read models held them in the clear too: built again from the sealed log.
            for name in PROJECTIONS:
                report = rebuild(parts.programmes, parts.read_models, parts.store, name,
                                 progress=True)
                rebuilt.add(name)
                click.echo(f"  rebuilt the {report.name} read models: v{report.new_version} "
                           f"at position {report.position}")
            parts.database.compact()
            click.echo("  compacted the store: no copy of the clear fields is left in its "
                       "files (backups taken before still hold them: OPERATIONS.md)")
        for report in rebuild_outdated(parts.programmes, parts.read_models, parts.store,
                                       progress=True):
            if report.name in rebuilt:
                continue
            click.echo(f"  rebuilt the {report.name} read models: v{report.new_version} at "
                       f"position {report.position}")
    click.echo("the store is up to date")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Back up the store to one file, PATH, consistent while the service writes.

    With TRACTION_CHECKPOINT_KEY and TRACTION_CHECKPOINT_LOG set, the head is
    signed first, so that the copy carries a checkpoint of it. A store of an
    older release can be backed up before it is migrated.
    """
    with components(check_schema=False) as parts:
        if parts.checkpoint_keys.current is not None and parts.checkpoint_log is not None:
            report = verify_store(audit_recorder(parts.programmes), parts.checkpoints,
                                  parts.checkpoint_keys, parts.checkpoint_log,
                                  incremental=True)
            if report.failure is not None:
                click.echo(f"warning: the chain is BROKEN at position "
                           f"{report.failure.position} ({report.failure.kind}); the backup "
                           "copies the store as it is", err=True)
        try:
            manifest = backups.backup(parts.store, path)
        except backups.BackupError as error:
            raise click.ClickException(str(error)) from None
    schema = manifest.schema_revision or "of release 0.1.0"
    click.echo(f"backed up the {manifest.store} store (schema {schema}) at position "
               f"{manifest.head_position}, chain hash {manifest.head_chain_hash}, to {path} "
               f"({path.stat().st_size:,} bytes)")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace what the target store holds.")
def restore(path: Path, force: bool) -> None:
    """Restore the backup PATH into the configured store (which must be empty, or
    --force), then verify the restored chain.

    Stop the service first. The whole backup is checked before anything is
    written: a truncated or corrupt one is refused, and the target left as it was.
    """
    current = settings()
    with store_errors(current):
        try:
            manifest = backups.restore(current.store, path, force=force)
        except backups.BackupError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"restored the {manifest.store} store backed up at {manifest.created_at}: "
               f"position {manifest.head_position}, chain hash {manifest.head_chain_hash}"
               + (" (the store's own data keys kept: a restore never brings back a key "
                  "destroyed since)" if force else ""))
    with components(check_schema=False) as parts:
        # The copy against the checkpoints it carries: the checkpoint log also
        # holds those signed after the backup, which a restored copy cannot reach.
        report = verify_store(audit_recorder(parts.programmes), parts.checkpoints,
                              parts.checkpoint_keys, None, write_checkpoint=False,
                              use_checkpoints=parts.checkpoint_keys.configured)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.failure is not None:
        click.echo(f"the restored chain is BROKEN at position {report.failure.position} "
                   f"({report.failure.kind}): {report.failure.detail}")
        sys.exit(1)
    latest = report.checkpoints.get("latest_authenticated")
    click.echo(f"verified: {report.events_checked} events, the chain whole to position "
               f"{report.head[0] if report.head else 0}"
               + (f", reaching the signed checkpoint at {latest}" if latest else ""))
    if manifest.schema_revision != migrations.known_revisions()[-1]:
        click.echo("this copy was taken by an earlier release: run `traction migrate` next")
