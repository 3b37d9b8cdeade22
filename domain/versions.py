"""Event versions: reading events recorded under an older schema, refusing newer ones.

A stored event keeps the schema version it was recorded under (the
library's `class_version`, absent for version 1). Each event class says its
current version and how to bring an older event's state up to it:
`upcast_v1_v2(state)`, `upcast_v2_v3(state)`, ... (the library's
convention). Stored bytes are never rewritten: an old event is upcast every
time it is read, on every read path: the aggregate's replay (through
`VersionedMapper`), the history and the projections' decoding (through
`upcast_state`, service/storage/stored.py) and the audit's decoding.

Upcasters change only the plain JSON of an event's state (its `data`), so
they work the same on the mapper's decoded state and on the raw JSON the
fast paths read (where ids and times are still encoded).

An event recorded by a newer release (a version above the class's, or a
type this release does not know, as in a rolling upgrade) is never read as
if it were an older one: `EventFromNewerRelease` says so, and each reader
decides what to show (the history shows it as stored, marked; the
projections park it; replaying its programme is refused with a clear answer).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain import personal

#: Where a stored state keeps its schema version (the library's name).
VERSION_KEY = "class_version"


class EventFromNewerRelease(Exception):
    """A stored event of a version (or type) that this release cannot read."""

    def __init__(self, topic: str, version: int | None) -> None:
        event_type = topic.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        what = (f"{event_type} version {version}" if version is not None
                else f"an event type this release does not know ({event_type})")
        super().__init__(f"recorded by a newer release: {what}")
        self.event_type = event_type
        self.version = version


def current_version(event_class: type) -> int:
    """The schema version events of this class are recorded under now."""
    return int(getattr(event_class, VERSION_KEY, 1))


@functools.lru_cache(maxsize=256)
def event_class(topic: str) -> type:
    """The event class a stored topic names; EventFromNewerRelease if there is none."""
    try:
        return cast(type, resolve_topic(topic))
    except Exception:  # the library raises TopicError, or an import error
        raise EventFromNewerRelease(topic, None) from None


def upcast_state(topic: str, state: dict[str, Any], to_version: int | None = None
                 ) -> dict[str, Any]:
    """Bring a stored event's state (in place) to its class's current version, or to
    `to_version` (what an older release showed, when checking its export)."""
    cls = event_class(topic)
    recorded = int(state.pop(VERSION_KEY, 1))
    current = current_version(cls)
    target = current if to_version is None else to_version
    if recorded > current or target > current:
        state[VERSION_KEY] = recorded  # put back: it is shown as stored
        raise EventFromNewerRelease(topic, max(recorded, target))
    while recorded < target:
        getattr(cls, f"upcast_v{recorded}_v{recorded + 1}")(state)
        recorded += 1
    return state


def current_versions(event_classes: dict[str, type]) -> dict[str, int]:
    """Each event type's current schema version, by name (an export's header says them)."""
    return {name: current_version(cls) for name, cls in event_classes.items()}


def recorded_version(state: dict[str, Any]) -> int:
    """The schema version a stored state (not yet upcast) was recorded under."""
    return int(state.get(VERSION_KEY, 1))


class VersionedMapper(Mapper[Any]):
    """The library's mapper, refusing events of a newer version than their class's,
    and sealing patients' personal fields on the way to the store.

    The library upcasts older events itself but would read a newer one as
    if it were current, silently: a newer release may have changed what a
    field means. This is the library's `to_domain_event` (eventsourcing 9.5)
    with that check, and with `upcast_state` doing the upcasting.

    With a `seal` (domain/personal.py; the store's keyring), the mapper is the
    seam between the domain's events and their stored form: personal fields are
    sealed in `to_stored_event` and opened in `to_domain_event`, so the
    aggregate never sees a ciphertext and the store never a personal field.
    """

    #: Seals personal fields (the store's keyring); None: kept as they are (in memory).
    seal: personal.Seal | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (topic, class_version, personal fields) of each event class stored so far.
        self._stored_as: dict[type, tuple[str, int, tuple[str, ...]]] = {}

    def register_patients(self, domain_events: Sequence[Any]) -> None:
        """Make the data keys of the programmes these events start, all in one go
        (`to_stored_event` would make them one at a time)."""
        if self.seal is None:
            return
        patients = [(event.originator_id, event.clinic_id, event.data["patient_ref"])
                    for event in domain_events if type(event).__name__ == "ProgrammeStarted"
                    and "patient_ref" in event.data]
        if patients:
            self.seal.register_all(patients)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """The library's `Mapper.to_stored_event` (eventsourcing 9.5), sealing the
        personal fields first, with what it works out per event (the topic, the
        class version) worked out once per class: the same StoredEvent, to the byte
        (tests/domain/test_stored_events.py holds the two to each other)."""
        event_class = type(domain_event)
        stored_as = self._stored_as.get(event_class)
        if stored_as is None:
            stored_as = self._stored_as[event_class] = (
                get_topic(event_class), getattr(event_class, VERSION_KEY, 1),
                personal.PERSONAL_FIELDS.get(event_class.__name__, ()))
        topic, class_version, personal_names = stored_as
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        seal = self.seal
        if seal is not None and personal_names:
            data = event_state["data"]
            if any(name in data for name in personal_names):
                type_name = event_class.__name__
                if type_name == "ProgrammeStarted":
                    seal.register(originator_id, domain_event.clinic_id, data["patient_ref"])
                # In the stored state only: the pending event stays as the domain made it.
                event_state["data"] = personal.sealed(seal, originator_id,
                                                      domain_event.event_id, type_name, data)
        if class_version > 1:
            event_state[VERSION_KEY] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=topic, state=stored_state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = event_class(stored_event.topic)
        stored_state = stored_event.state
        try:
            if self.cipher:
                stored_state = self.cipher.decrypt(stored_state)
            if self.compressor:
                stored_state = self.compressor.decompress(stored_state)
            event_state: dict[str, Any] = self.transcoder.decode(stored_state)
        except Exception as error:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic "
                f"'{stored_event.topic}', originator_id '{stored_event.originator_id}' "
                f"and originator_version {stored_event.originator_version}: {error}"
            ) from error
        upcast_state(stored_event.topic, event_state)
        if self.seal is not None and cls.__name__ in personal.PERSONAL_FIELDS:
            event_state["data"] = personal.opened(
                self.seal, stored_event.originator_id, event_state["event_id"], cls.__name__,
                event_state["data"])
        id_convertor = find_id_convertor(cls, type(stored_event.originator_id))
        event_state["originator_id"] = id_convertor(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event
