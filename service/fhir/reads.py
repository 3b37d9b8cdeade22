"""One programme as a FHIR Bundle of type collection, now, after a version or as
known at a record time (the same choices as a replay)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fhir.resources.R4B.bundle import Bundle

from domain.application import Programmes
from service.fhir.mapping import collection, programme_resources


def programme_bundle(programmes: Programmes, clinic_id: str, clinic_name: str | None,
                     programme_id: UUID, base: str, *, version: int | None = None,
                     as_of: datetime | None = None) -> dict[str, Any]:
    """The programme's resources as a collection Bundle whose entries' URLs are
    under `base` (the clinic's FHIR base URL); another clinic's programme is not
    found, exactly as a missing one."""
    if as_of is not None:
        known = programmes.version_as_of(clinic_id, programme_id, as_of)
        version = known if version is None else min(version, known)
    events = programmes.history(clinic_id, programme_id, version)
    resources = programme_resources(clinic_id, clinic_name, str(programme_id), events)
    bundle = collection(base, resources, datetime.now(UTC).isoformat())
    # Parsed by the R4B models before it leaves: a mapping defect is our error
    # (a 500 that is logged), never an invalid document in a client's hands.
    Bundle.model_validate(bundle)
    return bundle
