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
With a read replica (TRACTION_READ_DATABASE_URL), the replica's side is built
here too: its connections and the read models as it holds them;
`check_read_replica` is the start-up check that it can be this store's replica.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.application import Programmes, utc_now
from domain.personal import UNREADABLE, SealBroken
from projections.store import ReadModelStore, ReplicaReadModels, open_read_models
from service.audit import jobs as verification_jobs
from service.audit.checkpoints import CheckpointKeys, CheckpointLog, Checkpoints
from service.config import Settings
from service.fhir.bulk import BulkExports
from service.storage import migrations
from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.replica import CONNECT_TIMEOUT as REPLICA_CONNECT_TIMEOUT
from service.storage.replica import Replica, check_replica
from service.storage.sealing import Keyring, KeySettings, development_store
from service.storage.stores import Store, eventsourcing_env

log = logging.getLogger(__name__)

#: Said on every start of a development store (`traction db init --development-keys`).
DEVELOPMENT_WARNING = (
    "DEVELOPMENT STORE: its key-encryption key is kept in the store itself; patients' "
    "personal fields are NOT protected at rest. Never record real patients in it.")

Clock = Callable[[], datetime]

#: How long closing waits for this process's verification jobs to end.
CLOSE_WAIT_SECONDS = 30.0


@dataclass
class Components:
    """What the server, the runner and the command line are made of."""

    settings: Settings
    store: Store
    programmes: Programmes
    read_models: ReadModelStore
    #: The service's own tables: clinics, tokens, the access log, checkpoints, keys.
    database: Database
    directory: Directory
    checkpoints: Checkpoints
    #: Sign and check chain checkpoints (none configured: none can be checked).
    checkpoint_keys: CheckpointKeys
    #: The copy of every checkpoint outside the database; None when not configured.
    checkpoint_log: CheckpointLog | None
    #: Seals patients' personal fields under each programme's data key (None only for
    #: a store of an older release opened before it is migrated: it has no key table).
    keyring: Keyring | None = None
    #: The streaming replica that serves reads (TRACTION_READ_DATABASE_URL), or None.
    replica: Replica | None = None
    #: The read models as the replica holds them (None without a replica).
    replica_read_models: ReadModelStore | None = None
    #: The access log (and clinics, tokens) as the replica holds them, read only.
    replica_directory: Directory | None = None
    #: FHIR Bulk Data export jobs run by this process (service/fhir/bulk.py).
    fhir_exports: BulkExports | None = None

    def open_patient_ref(self, programme_id: str, sealed: str) -> str:
        """A summary's sealed patient_ref, opened for a read (the marker once erased)."""
        if self.keyring is None:
            return sealed
        try:
            return str(self.keyring.open(UUID(programme_id), None,
                                         "patient_ref", sealed))
        except SealBroken:
            return UNREADABLE

    def close(self) -> None:
        # A verification still reading the store ends first (a worker that is
        # killed instead leaves its job to read as abandoned).
        verification_jobs.wait_for_running(timeout=CLOSE_WAIT_SECONDS)
        if self.fhir_exports is not None:
            self.fhir_exports.close()
        self.programmes.close()
        self.database.close()
        if self.replica is not None:
            self.replica.close()
            self.replica.database.close()


def open_keyring(settings: Settings, database: Database) -> Keyring:
    """The store's keyring with the configured KEK: KeyRefused (before anything is
    written) without a KEK on a store not made for development, or with a wrong one."""
    keyring = Keyring.unlock(database, settings.kek)
    if keyring.development:
        log.warning(DEVELOPMENT_WARNING)
    return keyring


def check_keys(settings: Settings) -> Keyring:
    """Before the service starts: the store's keyring (KeyRefused says what is wrong).
    Its connections are closed afterwards."""
    database = Database(settings.store)
    try:
        return open_keyring(settings, database)
    finally:
        database.close()


def make_development_store(settings: Settings) -> bool:
    """Mark a new store as a development store (its KEK kept in it); False if it
    already has keys wrapped by an operator's KEK."""
    database = Database(settings.store)
    try:
        return development_store(KeySettings(database))
    finally:
        database.close()



def open_programmes(settings: Settings, *, clock: Clock = utc_now,
                    keyring: Keyring | None = None) -> Programmes:
    """The application on the configured store (its tables must exist), sealing
    personal fields with `keyring`, or with a keyring of its own on the store."""
    if keyring is None:
        keyring = open_keyring(settings, Database(settings.store))
    return Programmes(env=eventsourcing_env(settings.store), clock=clock, seal=keyring)


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
    database = Database(store)
    keyring = None
    if check_schema or migrations.has_key_tables(store):
        keyring = open_keyring(settings, database)
    programmes = Programmes(env=eventsourcing_env(store), clock=clock, seal=keyring)
    replica = replica_database = None
    read_store = settings.read_store
    if read_store is not None:
        # Connected on first use: a replica that is down must not stop a worker.
        replica_database = Database(read_store,
                                    pool_size=settings.pg_pool_size + settings.pg_max_overflow,
                                    timeout=REPLICA_CONNECT_TIMEOUT)
        events_table = programmes.recorder.events_table_name  # type: ignore[attr-defined]
        replica = Replica(replica_database, database, events_table=events_table)
    directory = Directory(database)
    return Components(
        settings=settings,
        store=store,
        programmes=programmes,
        read_models=open_read_models(programmes),
        database=database,
        directory=directory,
        checkpoints=Checkpoints(database),
        checkpoint_keys=CheckpointKeys.from_secrets(settings.checkpoint_key,
                                                    settings.checkpoint_previous_keys),
        checkpoint_log=CheckpointLog(settings.checkpoint_log) if settings.checkpoint_log
        else None,
        keyring=keyring,
        replica=replica,
        replica_read_models=ReplicaReadModels(replica_database) if replica_database else None,
        replica_directory=Directory(replica_database) if replica_database else None,
        fhir_exports=BulkExports(programmes, database, settings.fhir_export_path,
                                 directory.clinic_name),
    )


def check_read_replica(settings: Settings) -> str | None:
    """Before the service starts: ReplicaMisconfigured if TRACTION_READ_DATABASE_URL
    can never be this store's replica; a warning to print if it cannot be reached
    now (reads go to the primary until it can); None if all is well or unset."""
    if settings.read_store is None:
        return None
    return check_replica(settings.read_store, settings.store)


def initialise_store(settings: Settings) -> None:
    """Create a new store's tables (idempotent; safe from two hosts at once); an
    existing store must be this release's already (SchemaError says what to run)."""
    store = settings.store
    if migrations.status(store).empty:
        migrations.migrate(store, wait=True)  # a second host waits, then finds it done
    migrations.require_current(store)
