"""The `traction` command line: one group per area, each in its own module.

Commands only translate: they read their options, take the service's parts
from the composition root (service/cli/context.py, service/bootstrap.py),
call one thing and print what it says.
"""

from __future__ import annotations

import click

from service.cli.admin import clinics, db, tokens
from service.cli.audit import audit
from service.cli.demo import demo
from service.cli.keys import erase, keys
from service.cli.projections import projections
from service.cli.serve import serve
from service.cli.store import backup, migrate, restore


@click.group()
def main() -> None:
    """Traction Ledger: the shared, event-sourced record of traction programmes."""


for command in (db, migrate, backup, restore, serve, clinics, tokens, audit, demo,
                projections, keys, erase):
    main.add_command(command)
