"""The composition root: the one place that builds the service's parts.

The HTTP app (per gunicorn worker), the projection runner and every command
of the command line start from `Settings` and ask this module for what they
need: the `Programmes` application on the configured store, the read models
beside it, the service's own tables (clinics, tokens, the access log,
checkpoints). Nothing else constructs them, so a change in how the store is
opened is made here once.

`initialise_store` creates every table of a new store (the migrations,
service/storage/migrations) once, before any worker starts, and refuses an
existing store with migrations pending; `open_components` refuses one too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.application import Programmes, utc_now
from projections.store import ReadModelStore, open_read_models
from service.audit.checkpoints import CheckpointKey, Checkpoints
from service.config import Settings
from service.storage import migrations
from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.stores import Store, eventsourcing_env

Clock = Callable[[], datetime]


@dataclass
class Components:
    """What the server, the runner and the command line are made of."""

    settings: Settings
    store: Store
    programmes: Programmes
    read_models: ReadModelStore
    #: The service's own tables: clinics, tokens, the access log, checkpoints.
    database: Database
    directory: Directory
    checkpoints: Checkpoints
    #: Signs and checks chain checkpoints; None when TRACTION_CHECKPOINT_KEY is unset.
    checkpoint_key: CheckpointKey | None

    def close(self) -> None:
        self.programmes.close()
        self.database.close()


def open_programmes(settings: Settings, *, clock: Clock = utc_now) -> Programmes:
    """The application on the configured store (its tables must exist)."""
    return Programmes(env=eventsourcing_env(settings.store), clock=clock)


def offline_programmes() -> Programmes:
    """The application with no store (in memory): its mapper reads an export's events."""
    return Programmes()


def open_components(settings: Settings, *, clock: Clock = utc_now,
                    check_schema: bool = True) -> Components:
    """Everything on the configured store, whose tables exist (`initialise_store`).

    The store's schema must be this release's (SchemaError says what to run),
    unless `check_schema` is off: for reading an older store (verifying it,
    backing it up) before it is migrated."""
    store = settings.store
    if check_schema:
        migrations.require_current(store)
    programmes = open_programmes(settings, clock=clock)
    database = Database(store)
    return Components(
        settings=settings,
        store=store,
        programmes=programmes,
        read_models=open_read_models(programmes),
        database=database,
        directory=Directory(database),
        checkpoints=Checkpoints(database),
        checkpoint_key=CheckpointKey.from_secret(settings.checkpoint_key),
    )


def initialise_store(settings: Settings) -> None:
    """Create a new store's tables (idempotent; safe from two hosts at once); an
    existing store must be this release's already (SchemaError says what to run)."""
    store = settings.store
    if migrations.status(store).empty:
        migrations.migrate(store, wait=True)  # a second host waits, then finds it done
    migrations.require_current(store)
