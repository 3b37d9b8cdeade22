"""`traction demo seed`: a simulated history, to try the service with."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from service.cli.context import components
from service.demo.seeding import DEFAULT_SEED, DemoError, SeedReport, seed_demo, token_table
from service.demo.simulation import DEMO_UNTIL


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


@click.group()
def demo() -> None:
    """A simulated history of traction programmes, to try the service with."""


@demo.command("seed")
@click.option("--clinics", type=click.IntRange(1, 200), default=None,
              show_default="4, or TRACTION_DEMO_CLINICS", help="Demo clinics to register.")
@click.option("--programmes", type=click.IntRange(1, 100_000), default=None,
              show_default="60, or TRACTION_DEMO_PROGRAMMES", help="Programmes per clinic.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="The same seed gives the same events; seeding it again adds nothing.")
@click.option("--until", type=_Moment(), default=None,
              help=f"The simulation's \"now\" [default: {DEMO_UNTIL.isoformat()}, a fixed "
              "moment, so a seed always gives the same history].")
@click.option("--no-tokens", is_flag=True, help="Do not issue demo tokens.")
def demo_seed(clinics: int | None, programmes: int | None, seed: int, until: datetime | None,
              no_tokens: bool) -> None:
    """Post a realistic simulated history through the application layer.

    Registers the demo clinics (skipping those already registered), posts each
    programme's events in the batches a clinic system would send (home devices
    syncing late, corrections, pauses, discharges...), and issues demo tokens:
    an admin, an auditor, an all-clinic viewer, and a writer and a viewer per
    clinic.
    """
    with components(create=True) as parts:
        try:
            report = seed_demo(parts, clinics=clinics or parts.settings.demo_clinics,
                               programmes=programmes or parts.settings.demo_programmes,
                               seed=seed, until=until, progress=True,
                               issue_tokens=not no_tokens)
        except DemoError as error:
            raise click.ClickException(str(error)) from None
    print_seed_report(report)
    if report.refusals:
        raise click.ClickException(f"{len(report.refusals)} programmes were refused")


def print_seed_report(report: SeedReport) -> None:
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
