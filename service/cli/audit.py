"""`traction audit ...`: verify, checkpoint, replay, export."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import click
from eventsourcing.persistence import PersistenceError
from tqdm import tqdm

from domain import errors
from service.audit.checkpoints import (
    KEY_VARIABLE,
    LOG_VARIABLE,
    NO_KEY,
    NO_LOG,
    PREVIOUS_KEYS_VARIABLE,
    CheckpointKeys,
    generate_key,
)
from service.audit.export import export_log, verify_export
from service.audit.log import audit_recorder
from service.audit.replay import replay as replay_programme
from service.audit.verify import Report, verify_store
from service.bootstrap import Components, offline_programmes
from service.cli.context import components, settings
from service.storage.directory import Directory


@click.group()
def audit() -> None:
    """Auditing: verify the integrity chain, checkpoint it, replay, export."""


@contextmanager
def _store() -> Iterator[Components]:
    """The configured store, which `traction db init` (or `serve`) has created."""
    # An older store's chain can be checked before it is migrated.
    with components(check_schema=False) as parts:
        try:
            audit_recorder(parts.programmes).chain_extent()
        except PersistenceError as error:
            raise click.ClickException(
                f"cannot read the event store ({error}); is it initialised "
                "(`traction db init`)?") from None
        yield parts


@contextmanager
def _offline_mapper() -> Iterator[Any]:
    """The event mapper alone, with no store behind it (for an export)."""
    programmes = offline_programmes()
    try:
        yield programmes.mapper
    finally:
        programmes.close()


def _bar(description: str, unit: str = "event") -> tqdm:
    # disable=None: a bar on a terminal, silence under cron or in a pipe.
    return tqdm(desc=description, unit=unit, unit_scale=True, disable=None, file=sys.stderr)


def _record_read(directory: Directory, command: str, **where: Any) -> None:
    """The access log notes command-line reads of patient data too."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    actor = {"token_id": None, "token_label": f"command line ({user})", "role": None}
    directory.record_access("read", actor, route=command, **where)


def _print_report(report: Report, as_json: bool) -> None:
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    if report.failure is not None:
        failure = report.failure
        click.echo(f"BROKEN at position {failure.position}: {failure.kind}")
        click.echo(f"  {failure.detail}")
        click.echo(f"  {report.events_checked} events verified before it")
        return
    access = report.access_log
    if access is not None and access.failure is not None:
        click.echo(f"BROKEN access log at entry {access.failure[0]}")
        click.echo(f"  {access.failure[1]}")
        click.echo(f"  {access.checked} access-log entries verified before it")
        return
    if report.unverifiable is not None:
        click.echo(f"NOT SHOWN WHOLE: the chain holds for {report.events_checked} events, "
                   "but the checkpoints could not be checked")
        click.echo(f"  {report.unverifiable}")
        click.echo("  (run with --no-checkpoints to check the chain alone)")
        return
    chain_only = "" if report.checkpoints.get("checked", True) else " (the chain alone)"
    if report.head is None:
        click.echo(f"ok: the log is empty{chain_only}")
    else:
        click.echo(f"ok: {report.events_checked} events verified{chain_only}; head at "
                   f"position {report.head[0]}, chain hash {report.head[1]}")
    if access is not None:
        click.echo(f"ok: {access.checked} access-log entries verified")
    written = report.checkpoints.get("written")
    if written:
        click.echo(f"signed a checkpoint at position {written['position']}")


@audit.command("verify")
@click.option("--export", "export_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Verify this export file offline, without the database.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-checkpoints", "no_checkpoints", is_flag=True,
              help="Check the chain alone: without the checkpoints a truncated tail or a "
                   "recomputed chain goes unseen.")
def verify(export_path: Path | None, as_json: bool, no_checkpoints: bool) -> None:
    """Walk the whole integrity chain and the signed checkpoints; exit 1 at the
    first position where it breaks, and also when the checkpoints cannot be
    checked (no TRACTION_CHECKPOINT_KEY or TRACTION_CHECKPOINT_LOG), unless
    --no-checkpoints.

    A verified head is checkpointed (signed) when both are set.
    """
    if export_path is not None:
        with _offline_mapper() as mapper, export_path.open(encoding="utf-8") as lines, \
                _bar("verifying export", unit="line") as bar:
            current = settings()
            keys = CheckpointKeys.from_secrets(current.checkpoint_key,
                                               current.checkpoint_previous_keys)
            try:
                report = verify_export(_counted(lines, bar), keys, mapper,
                                       use_checkpoints=not no_checkpoints)
            except ValueError as error:
                raise click.ClickException(str(error)) from None
    else:
        with _store() as parts, _bar("verifying") as bar:
            report = verify_store(audit_recorder(parts.programmes), parts.checkpoints,
                                  parts.checkpoint_keys, parts.checkpoint_log,
                                  progress=bar, use_checkpoints=not no_checkpoints,
                                  access_log=parts.database)
    _print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


def _counted(lines: Iterable[str], bar: tqdm) -> Iterator[str]:
    for line in lines:
        bar.update(1)
        yield line


@audit.command("checkpoint")
def checkpoint() -> None:
    """Verify what was recorded since the latest checkpoint, and sign the new head.

    The checkpoint is stored in the database and appended to the checkpoint
    log (TRACTION_CHECKPOINT_LOG), which you ship off this machine; it is also
    printed as one JSON line. Schedule it (a systemd timer, a compose service).
    """
    current = settings()
    if current.checkpoint_key is None:
        raise click.ClickException(f"{NO_KEY}. Set it to write checkpoints "
                                   "(`traction audit new-key` prints a new key).")
    if current.checkpoint_log is None:
        raise click.ClickException(f"{NO_LOG}. Set it to write checkpoints.")
    with _store() as parts, _bar("verifying new events") as bar:
        report = verify_store(audit_recorder(parts.programmes), parts.checkpoints,
                              parts.checkpoint_keys, parts.checkpoint_log,
                              progress=bar, incremental=True)
        linkable = parts.checkpoints.linkable()
    if not report.ok:
        _print_report(report, as_json=False)
        click.echo("no checkpoint was written", err=True)
        sys.exit(1)
    if not linkable:
        raise click.ClickException("the store is of an earlier release: run `traction "
                                   "migrate` before writing checkpoints")
    if report.checkpoints.get("write_error"):
        raise click.ClickException(report.checkpoints["write_error"])
    written = report.checkpoints.get("written")
    if written is None:
        latest = report.checkpoints.get("latest_authenticated")
        click.echo(f"no new events since the checkpoint at position {latest}"
                   if latest else "the log is empty: nothing to checkpoint", err=True)
        return
    click.echo(f"verified {report.events_checked} new events; checkpoint at position "
               f"{written['position']} appended to {parts.checkpoint_log.path}", err=True)
    click.echo(json.dumps({"kind": "checkpoint", **written}, separators=(",", ":")))


@audit.command("new-key")
def new_key() -> None:
    """Print a new checkpoint key (256 random bits, hex).

    Set it as TRACTION_CHECKPOINT_KEY (from a secret store, never in a file
    under version control). To rotate, move the current key to
    TRACTION_CHECKPOINT_PREVIOUS_KEYS first: it goes on verifying what it signed.
    """
    click.echo(generate_key())
    click.echo(f"set it as {KEY_VARIABLE}; keep the one it replaces in "
               f"{PREVIOUS_KEYS_VARIABLE}, and set {LOG_VARIABLE}", err=True)


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an RFC 3339 time", param_hint="--as-of") from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give an offset (Z or +hh:mm)", param_hint="--as-of")
    return parsed


@audit.command("replay")
@click.argument("programme_id", type=click.UUID)
@click.option("--version", type=click.IntRange(min=1), help="The state after this version.")
@click.option("--as-of", "as_of", metavar="TIME",
              help="The state as the service knew it at this record time (RFC 3339).")
@click.option("--clinic", "clinic_id", metavar="CLINIC_ID",
              help="PROGRAMME_ID is this clinic's own programme id (else: the stored id, "
                   "as the log and the audit export show it).")
@click.option("--json", "as_json", is_flag=True, help="Print state and events as JSON.")
def replay(programme_id: UUID, version: int | None, as_of: str | None, clinic_id: str | None,
           as_json: bool) -> None:
    """Print a programme's state (now, after --version N, or --as-of T) and the
    events that led to it."""
    if version is not None and as_of is not None:
        raise click.UsageError("give --version or --as-of, not both")
    when = _parse_as_of(as_of)
    with _store() as parts:
        try:
            result = replay_programme(parts.programmes, programme_id, version=version,
                                      as_of=when, clinic_id=clinic_id)
        except errors.ProgrammeNotFound as error:
            raise click.ClickException(str(error)) from None
        _record_read(parts.directory, "traction audit replay", clinic_id=result["clinic_id"],
                     programme_id=result["programme_id"],
                     detail=f"version {version}; as_of {as_of}")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    aliased = (f" (the clinic's {result['clinic_programme_id']})"
               if result["clinic_programme_id"] != result["programme_id"] else "")
    click.echo(f"programme {result['programme_id']} of {result['clinic_id']}{aliased}: "
               f"version {result['version']} of {result['latest_version']}")
    click.echo("state:")
    for name, value in result["state"].items():
        click.echo(f"  {name}: {json.dumps(value)}")
    click.echo(f"events ({len(result['events'])}):")
    for event in result["events"]:
        corrected = f"  corrected by {event['corrected_by']}" if event["corrected_by"] else ""
        click.echo(f"  v{event['version']} @{event['position']} {event['occurred_at']} "
                   f"{event['type']} by {event['recorded_by']} (recorded "
                   f"{event['recorded_at']}){corrected}")
        click.echo(f"      {json.dumps(event['data'], sort_keys=True)}")


@audit.command("export")
@click.option("--clinic", "clinic_id", default=None,
              help="Only this clinic's events (other positions as bare chain links).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write to this file (default: standard output).")
def export(clinic_id: str | None, output: Path | None) -> None:
    """Export the log as JSON Lines, with its chain values and checkpoints.

    Check it later, anywhere, with `traction audit verify --export FILE`.
    """
    with _store() as parts:
        if clinic_id is not None and not parts.directory.clinic_exists(clinic_id):
            raise click.ClickException(f"clinic {clinic_id} is not registered")
        _record_read(parts.directory, "traction audit export", clinic_id=clinic_id,
                     detail=f"to {output or 'standard output'}")
        with _output(output) as out, _bar("exporting") as bar:
            summary = export_log(audit_recorder(parts.programmes), parts.programmes.mapper,
                                 parts.checkpoints, parts.checkpoint_keys,
                                 parts.checkpoint_log, out,
                                 clinic_id=clinic_id, progress=bar)
    for warning in summary.report.warnings:
        click.echo(f"warning: {warning}", err=True)
    links = f" and {summary.links} links of other clinics" if clinic_id else ""
    click.echo(f"exported {summary.events} events{links}", err=True)
    if summary.report.failure is not None:
        failure = summary.report.failure
        click.echo(f"warning: the stored chain is BROKEN at position {failure.position} "
                   f"({failure.kind}): {failure.detail}. The export copies the store as it "
                   "is; verifying it shows the same break.", err=True)
        sys.exit(1)


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with path.open("w", encoding="utf-8", newline="\n") as out:
        yield out
