"""`traction db init`, `traction clinics ...`, `traction tokens ...`.

Names and labels are printed escaped (service/storage/names.py): one stored
before names had to be printable text cannot fake a row or reorder a line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from service.bootstrap import make_development_store
from service.cli.context import components, initialised, store_errors
from service.storage.directory import (
    ROLES,
    TOKEN_ID,
    DirectoryError,
    UnknownClinic,
    UnknownToken,
    parse_token,
)
from service.storage.names import escaped


@click.group()
def db() -> None:
    """The event store."""


@db.command("init")
@click.option("--development-keys", is_flag=True,
              help="For development only: keep the key-encryption key in the store itself, "
              "so the service starts without TRACTION_DATA_KEY (it says so on every start). "
              "Only on a new store; never for patients' data.")
def db_init(development_keys: bool) -> None:
    """Create the store's tables (safe to run again)."""
    current = initialised()
    store = current.store
    if development_keys:
        with store_errors(current):
            if not make_development_store(current):
                raise click.ClickException(
                    "--development-keys is only for a new store: this one already has "
                    "keys wrapped by an operator's key")
        click.echo("WARNING: a development store: its key-encryption key is kept in the "
                   "store itself, so personal fields are NOT protected at rest", err=True)
    click.echo(f"store ready: {store.kind} {store.sqlite_path or store.pg_dbname}")


@click.group()
def clinics() -> None:
    """Registered clinics (the tenants)."""


@clinics.command("add")
@click.argument("clinic_id")
@click.argument("name")
def clinics_add(clinic_id: str, name: str) -> None:
    """Register a clinic: ID is a slug like north-physio, NAME is shown on dashboards."""
    with components(create=True) as parts:
        try:
            clinic = parts.directory.add_clinic(clinic_id, name)
        except DirectoryError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"registered clinic {clinic['clinic_id']} ({escaped(clinic['name'])})")


@clinics.command("list")
def clinics_list() -> None:
    """List registered clinics: id, name, and `deactivated <when>` for a deactivated one."""
    with components() as parts:
        for clinic in parts.directory.clinics():
            state = (f"\tdeactivated {clinic['deactivated_at']}"
                     if clinic["deactivated_at"] else "")
            click.echo(f"{clinic['clinic_id']}\t{escaped(clinic['name'])}{state}")


@clinics.command("deactivate")
@click.argument("clinic_id")
def clinics_deactivate(clinic_id: str) -> None:
    """Deactivate a clinic: its tokens stop working (every worker within a second) and
    none are issued for it; its records stay, readable by auditors."""
    with components() as parts:
        try:
            clinic = parts.directory.deactivate_clinic(clinic_id)
        except UnknownClinic:
            raise click.ClickException(f"no clinic is registered as {escaped(clinic_id)}"
                                       ) from None
    click.echo(f"deactivated clinic {clinic['clinic_id']} at {clinic['deactivated_at']}; "
               "its tokens no longer work")


@clinics.command("reactivate")
@click.argument("clinic_id")
def clinics_reactivate(clinic_id: str) -> None:
    """Reactivate a deactivated clinic: its tokens that are neither revoked nor expired
    work again (every worker within a second). Revoke any you do not trust first."""
    with components() as parts:
        try:
            clinic, working = parts.directory.reactivate_clinic(clinic_id)
        except UnknownClinic:
            raise click.ClickException(f"no clinic is registered as {escaped(clinic_id)}"
                                       ) from None
    click.echo(f"clinic {clinic['clinic_id']} is active; {working} of its tokens work "
               f"(`traction tokens list --clinic {clinic['clinic_id']}` lists them)")


@click.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("issue")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--clinic", "clinic_id", default=None, help="The clinic it is for (writer, viewer).")
@click.option("--label", default="", help="Who or what uses it, shown in the access log.")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True, max=3650),
              default=None, help="It stops working after this many days (default: never).")
def tokens_issue(role: str, clinic_id: str | None, label: str,
                 expires_in_days: float | None) -> None:
    """Issue a token; it is printed once, alone on the last line."""
    expires_at = (datetime.now(UTC) + timedelta(days=expires_in_days)
                  if expires_in_days is not None else None)
    with components(create=True) as parts:
        try:
            record, token = parts.directory.issue_token(role, clinic_id, label,
                                                        expires_at=expires_at)
        except DirectoryError as error:
            raise click.ClickException(escaped(str(error))) from None
    scope = record.clinic_id or "all clinics"
    until = f", until {record.expires_at}" if record.expires_at else ""
    click.echo(f"issued {record.role} token {record.token_id} for {scope}{until}; "
               "store it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
@click.option("--clinic", "clinic_id", default=None, help="Only this clinic's tokens.")
def tokens_list(clinic_id: str | None) -> None:
    """List tokens, never their secrets: id, role, scope, state, expiry, label.

    The state is active, expired, revoked, or clinic-deactivated.
    """
    now = datetime.now(UTC)
    with components() as parts:
        records = parts.directory.tokens(clinic_id)
        deactivated = {clinic["clinic_id"] for clinic in parts.directory.clinics()
                       if clinic["deactivated_at"]}
    for record in records:
        state = ("revoked" if record.revoked else "expired" if record.expired(now)
                 else "clinic-deactivated" if record.clinic_id in deactivated else "active")
        click.echo("\t".join([record.token_id, record.role, record.clinic_id or "all-clinics",
                              state, f"expires {record.expires_at}" if record.expires_at
                              else "no-expiry", escaped(record.label)]))


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its id (every worker refuses it within a second).

    TOKEN_ID is the 16 hexadecimal characters after `tl_` in the token, as
    `tokens issue` printed it. Given a whole token, this revokes that token
    and never prints its secret.
    """
    whole = parse_token(token_id)
    if whole is not None:
        token_id = whole[0]
        click.echo(f"that is a whole token; its id is {token_id} (the secret is not needed "
                   "to revoke it, and is not shown)", err=True)
    elif not TOKEN_ID.fullmatch(token_id):
        # Whatever this is (part of a secret?), it is not repeated back.
        raise click.ClickException(
            "that is not a token id: a token id is the 16 hexadecimal characters after "
            "tl_ in the token (tl_<id>_<secret>), as `traction tokens issue` printed it")
    with components() as parts:
        try:
            record = parts.directory.revoke_token(token_id)
        except UnknownToken:
            raise click.ClickException(f"no token has the id {token_id}") from None
    click.echo(f"revoked token {record.token_id}")
