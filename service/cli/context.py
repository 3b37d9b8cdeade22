"""What every command starts from: the settings, and the service's parts on its store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from service.bootstrap import Components, initialise_store, open_components
from service.config import Settings, SettingsError
from service.storage.errors import UNREACHABLE
from service.storage.migrations import SchemaError

#: Where a command keeps the settings it read (in its click context).
SETTINGS = "traction.settings"


def settings() -> Settings:
    """The settings from the environment, read once per command; a bad value stops it."""
    meta = click.get_current_context().find_root().meta
    if SETTINGS not in meta:
        try:
            meta[SETTINGS] = Settings.from_env()
        except SettingsError as error:
            raise click.UsageError(str(error)) from None
    return meta[SETTINGS]


def initialised() -> Settings:
    """The settings, after creating the store's tables if it is new; a store that
    needs `traction migrate` (or is a newer release's) stops the command."""
    current = settings()
    with store_errors(current):
        initialise_store(current)
    return current


@contextmanager
def components(*, initialise: bool = True, check_schema: bool = True
               ) -> Iterator[Components]:
    """The service's parts on the configured store, closed afterwards."""
    current = initialised() if initialise else settings()
    with store_errors(current):
        parts = open_components(current, check_schema=check_schema)
    try:
        yield parts
    finally:
        parts.close()


@contextmanager
def store_errors(current: Settings) -> Iterator[None]:
    """A store that cannot be reached or used as it is: a plain message, exit 1."""
    try:
        yield
    except UNREACHABLE as error:
        raise click.ClickException(
            f"cannot reach the {current.store.kind} store: {error}") from None
    except SchemaError as error:
        raise click.ClickException(str(error)) from None
