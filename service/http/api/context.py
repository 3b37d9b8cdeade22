"""What views need from the app: the service's parts, path converters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g
from werkzeug.routing import BaseConverter

from domain.application import Programmes
from projections.reading import Reader
from service.bootstrap import Components
from service.http.programme_reads import ProgrammeReads
from service.storage.clinic_positions import ClinicPositions
from service.storage.directory import Directory
from service.storage.replica import Replica

T = TypeVar("T")

#: Where create_app keeps the service's parts, the projections' reader and the
#: programmes' encoded reads.
COMPONENTS = "traction"
READER = "traction.reader"
PROGRAMME_READS = "traction.programme_reads"
POSITIONS = "traction.positions"


def components() -> Components:
    return current_app.extensions[COMPONENTS]


def programmes() -> Programmes:
    return components().programmes


def directory() -> Directory:
    return components().directory


def reader() -> Reader:
    return current_app.extensions[READER]


def replica() -> Replica | None:
    return components().replica


def from_replica(read: Callable[[Replica | None], T]) -> T:
    """`read(replica)` when there is a read replica and it can answer, else
    `read(None)`: the same read on the primary."""
    copy = replica()
    if copy is None:
        return read(None)
    return copy.read(lambda: read(copy), lambda: read(None))


def positions() -> ClinicPositions:
    """Positions as a clinic is shown them (service/storage/clinic_positions.py)."""
    return current_app.extensions[POSITIONS]


def positions_of() -> str | None:
    """Whose count of events the caller is shown as positions: its clinic's, for a
    token of one clinic; None (the global log's) for a token of all clinics
    (service/storage/clinic_positions.py)."""
    token = g.get("token")
    return token.clinic_id if token is not None else None


def programme_reads() -> ProgrammeReads:
    return current_app.extensions[PROGRAMME_READS]


class ClinicIdConverter(BaseConverter):
    """A clinic slug (docs/events.md); anything else in its place is a 404."""

    regex = r"[a-z0-9][a-z0-9-]{1,62}"
