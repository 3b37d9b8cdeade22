"""What every command starts from: the settings, and the service's parts on its store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from service.bootstrap import Components, initialise_store, open_components
from service.config import Settings, SettingsError
from service.storage.errors import UNREACHABLE
from service.storage.migrations import SchemaError
from service.storage.presence import is_initialised
from service.storage.sealing import KeyRefused

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


def existing() -> Settings:
    """The settings, once the store is known to exist: a command that reads or
    changes what is recorded never creates a store (it would be an empty one,
    somewhere the service does not look)."""
    current = settings()
    store = current.store
    try:
        found = is_initialised(store)
    except UNREACHABLE as error:
        raise click.ClickException(f"cannot reach the {store.kind} store: {error}") from None
    if not found:
        raise click.ClickException(
            f"there is no store at {store.describe()} (or it has no tables). Run this where "
            "TRACTION_DATABASE_URL names the service's store (unset, it is var/traction.sqlite "
            "in the source tree), or create the store with `traction db init`.")
    return current


@contextmanager
def components(*, create: bool = False, check_schema: bool = True
               ) -> Iterator[Components]:
    """The service's parts on the configured store, closed afterwards. Only
    commands that set a store up (`create`) make its tables if they are missing;
    `check_schema` off reads a store of an older release before it is migrated."""
    current = initialised() if create else existing()
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
    except (SchemaError, KeyRefused) as error:
        raise click.ClickException(str(error)) from None
