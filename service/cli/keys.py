"""`traction keys generate|rotate`, `traction erase`: the keys of patients' data, and erasure."""

from __future__ import annotations

import sys
from uuid import UUID

import click

from service.cli.context import components, settings
from service.storage.sealing import generate_kek, parse_kek


@click.group()
def keys() -> None:
    """The key-encryption key (KEK) that protects patients' personal fields."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random KEK (for TRACTION_DATA_KEY or a key file); nothing is stored."""
    click.echo(generate_kek())


@keys.command("rotate")
@click.option("--new-key-file", type=click.File("r"), required=True,
              help="A file holding the new KEK (`traction keys generate > FILE`); '-' reads "
              "it from standard input.")
def keys_rotate(new_key_file: click.utils.LazyFile) -> None:
    """Re-wrap every live data key under a new KEK, in one transaction.

    The store must be opened with its current KEK (TRACTION_DATA_KEY or
    TRACTION_DATA_KEY_FILE). Afterwards only the new KEK opens it: switch the
    service to it, then destroy the old one; backups taken before can then no
    longer reveal a patient erased since (OPERATIONS.md, "Keys")."""
    try:
        new_kek = parse_kek(new_key_file.read())
    except ValueError as error:
        raise click.ClickException(f"the new key is not a key ({error})") from None
    with components() as parts:
        assert parts.keyring is not None
        count = parts.keyring.rotate(new_kek)
    click.echo(f"re-wrapped {count} data keys under the new key-encryption key; set "
               "TRACTION_DATA_KEY to it, restart the service, then destroy the old key")


@click.command()
@click.argument("clinic_id")
@click.option("--programme", "programme_id", type=click.UUID, default=None,
              help="The programme to erase.")
@click.option("--patient-ref", default=None,
              help="Erase every programme of this patient at the clinic (read from standard "
              "input with '-', so that it stays out of the shell's history).")
@click.option("--reason", required=True, help="Why (recorded, and shown to auditors: name "
              "the request, never the patient).")
@click.option("--by", "erased_by", default="traction erase", show_default=True,
              help="Who asked (recorded).")
def erase(clinic_id: str, programme_id: UUID | None, patient_ref: str | None, reason: str,
          erased_by: str) -> None:
    """Erase a patient's personal data: one programme, or every programme of one
    patient_ref at CLINIC_ID. Records an erasure event (who, when, why) and destroys
    the programme's data key; coded clinical values and the metrics stay."""
    if (programme_id is None) == (patient_ref is None):
        raise click.UsageError("give exactly one of --programme and --patient-ref")
    if not reason.strip() or len(reason) > 500:
        raise click.UsageError("--reason must say why, in at most 500 characters")
    if patient_ref == "-":
        patient_ref = sys.stdin.readline().strip()
    settings()
    with components() as parts:
        assert parts.keyring is not None
        if programme_id is not None:
            targets = [programme_id]
        else:
            assert patient_ref is not None
            # The keyring knows them by stored id: named by the clinic's own programme_id.
            stored = parts.keyring.programmes_of(clinic_id, patient_ref)
            named = parts.programmes.clinic_programme_ids(stored)
            targets = [named.get(stored_id, stored_id) for stored_id in stored]
            if not targets:
                raise click.ClickException(
                    "no programme of that patient at this clinic holds personal data")
        for target in targets:
            try:
                receipt = parts.programmes.erase(clinic_id, target, erased_by, reason)
            except Exception as error:  # ProgrammeNotFound, said plainly
                raise click.ClickException(f"programme {target}: {error}") from None
            first = receipt.recorded[0]
            again = " (erased before: its first receipt)" if receipt.replayed else ""
            click.echo(f"erased programme {target}: {first['type']} at version "
                       f"{first['version']}, position {first['position']}{again}")
