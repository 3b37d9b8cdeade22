"""Patients' personal fields: which they are, how they are kept, what erasure leaves.

The catalogue (domain/events.py) marks a field `personal`: `patient_ref` and
every free-text field. Before an event is stored its personal fields are
sealed (encrypted, bound to the programme, the event and the field) by a
`Seal`, the port the store's keyring implements (service/storage/sealing.py);
read back, they are opened again. A programme that has been erased (its
`ProgrammeErased` event recorded, its data key destroyed) shows every personal
field as `ERASED`; a sealed value that fails authentication (it was altered)
shows as `UNREADABLE`. Both are fixed words, never anything a patient said.

The aggregate, the rules and the projections never see a key: without a seal
(in memory, in tests of the rules) fields are kept as they are given.

Pure Python: no Flask, no marshmallow, no SQL, no cryptography.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from domain.events import EVENT_TYPES, Kind

#: What every personal field of an erased programme reads as, everywhere: its state,
#: its history, replays, exports and the read models. One fixed word, documented in
#: the OpenAPI document and the README's privacy section.
ERASED = "[erased]"

#: What a sealed field reads as when its ciphertext fails authentication (it was
#: altered in the store): reads say so, and `traction audit verify` names the event.
UNREADABLE = "[unreadable: failed authentication]"

#: The event type that erases a programme's personal data (recorded by the service
#: on an administrator's request, never posted by a clinic system).
ERASURE_TYPE = "ProgrammeErased"

#: The personal fields of each event type's data, by type (top level of `data`;
#: a correction's corrected data holds none: only sessions and pain reports are
#: correctable, and their fields are coded).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in event_type.fields if f.personal)
    for name, event_type in EVENT_TYPES.items()
}
assert all(not f.personal for t in EVENT_TYPES.values() for f in t.fields
           if f.kind is Kind.CORRECTED_DATA), "corrected data must hold no personal field"


class SealBroken(Exception):
    """A sealed value failed authentication: it is not what was recorded."""


class Seal(Protocol):
    """Seals and opens the personal fields of one programme's events."""

    def register(self, programme_id: UUID, clinic_id: str, patient_ref: str) -> None:
        """Before a programme's first event is stored: make its data key (and remember
        its patient by a keyed hash, for erasure by patient)."""

    def register_all(self, patients: Sequence[tuple[UUID, str, str]]) -> None:
        """`register` for many programmes (programme_id, clinic_id, patient_ref) at
        once: their keys made in one write (bulk ingest starts many programmes)."""

    def seal(self, programme_id: UUID, event_id: UUID, name: str, value: str) -> str:
        """The field's value, sealed to this programme, event and field."""

    def open(self, programme_id: UUID, event_id: UUID, name: str, value: Any) -> Any:
        """The value as posted; ERASED without the programme's key; SealBroken if
        it fails authentication. A value that was never sealed is returned as it is."""

    def forget(self, programme_id: UUID) -> None:
        """Destroy the programme's data key: what it sealed can never be read again."""


def erased(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The event's data with every personal field it holds replaced by ERASED."""
    names = PERSONAL_FIELDS.get(event_type, ())
    if not any(name in data for name in names):
        return data
    return {key: (ERASED if key in names else value) for key, value in data.items()}


def opened(seal: Seal, programme_id: UUID, event_id: UUID, event_type: str,
           data: dict[str, Any]) -> dict[str, Any]:
    """The event's data with its personal fields opened (UNREADABLE where one fails)."""
    names = PERSONAL_FIELDS.get(event_type, ())
    if not any(name in data for name in names):
        return data
    result = dict(data)
    for name in names:
        if name in result:
            try:
                result[name] = seal.open(programme_id, event_id, name, result[name])
            except SealBroken:
                result[name] = UNREADABLE
    return result


def sealed(seal: Seal, programme_id: UUID, event_id: UUID, event_type: str,
           data: dict[str, Any]) -> dict[str, Any]:
    """The event's data with its personal fields sealed."""
    names = PERSONAL_FIELDS.get(event_type, ())
    if not any(name in data for name in names):
        return data
    return {key: (seal.seal(programme_id, event_id, key, value)
                  if key in names and isinstance(value, str) else value)
            for key, value in data.items()}
