"""`VersionedMapper.to_stored_event` works out each class's topic and version once,
and seals personal fields into the stored state only: every event it stores is,
to the byte, what the library's own `Mapper.to_stored_event` stores for the event
with its personal fields sealed (`personal.sealed`), as the mapper did before."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from domain import personal
from domain.programme import Programme
from domain.versions import VersionedMapper
from service.storage.transcoding import OrjsonTranscoder
from tests.domain.test_programme_record import posted, recorded


class FakeSeal:
    """Seals as a readable, deterministic text (the real keyring's nonces differ each
    time); remembers whom it registered."""

    def __init__(self) -> None:
        self.registered: list[tuple[uuid.UUID, str, str]] = []

    def register(self, programme_id: uuid.UUID, clinic_id: str, patient_ref: str) -> None:
        self.registered.append((programme_id, clinic_id, patient_ref))

    def register_all(self, patients: Any) -> None:
        self.registered.extend(patients)

    def seal(self, programme_id: uuid.UUID, event_id: uuid.UUID, name: str, value: str) -> str:
        return f"sealed:{programme_id}:{event_id}:{name}:{value}"

    def open(self, programme_id: uuid.UUID, event_id: uuid.UUID, name: str, value: Any) -> Any:
        return value.rsplit(":", 1)[-1]

    def forget(self, programme_id: uuid.UUID) -> None:
        pass


def every_kind_of_event() -> list[Any]:
    """Every type, with and without its optional personal fields, of two programmes."""
    events = []
    for programme_number, with_notes in ((1, True), (2, False)):
        envelopes = posted()
        if with_notes:
            envelopes[-2]["data"]["notes"] = "Ünïcode notes \u2028 and \"quotes\""
        programme = recorded(envelopes)
        programme.erase(uuid.UUID(int=programme_number), programme.last_occurred_at, "admin",
                        "asked")
        events.extend(programme.collect_events())
    return events


def transcoders() -> list[JSONTranscoder]:
    made = []
    for transcoder in (JSONTranscoder(), OrjsonTranscoder()):
        transcoder.register(UUIDAsHex())
        transcoder.register(DatetimeAsISO())
        made.append(transcoder)
    return made


def library_stored(mapper: Mapper[Any], seal: Any, event: Any) -> Any:
    """What the library stores for the event with its personal fields sealed."""
    data = event.data
    if seal is not None:
        data = personal.sealed(seal, event.originator_id, event.event_id,
                               type(event).__name__, data)
    sealed = object.__new__(type(event))
    object.__setattr__(sealed, "__dict__", {**vars(event), "data": data})
    return Mapper.to_stored_event(mapper, sealed)


@pytest.mark.parametrize("sealing", [False, True])
@pytest.mark.parametrize("transcoder", transcoders(), ids=["library", "orjson"])
def test_each_stored_event_is_the_librarys_to_the_byte(transcoder, sealing):
    events = every_kind_of_event()
    assert {type(e).__name__ for e in events} == {*Programme.COMMANDS, "ProgrammeStarted",
                                                  "ProgrammeErased"}
    seal = FakeSeal() if sealing else None
    mapper = VersionedMapper(transcoder=transcoder)
    mapper.seal = seal  # type: ignore[assignment]
    before = copy.deepcopy([vars(e) for e in events])
    for _ in range(2):  # the second time from what was worked out per class
        for event in events:
            mine = mapper.to_stored_event(event)
            theirs = library_stored(mapper, seal, event)
            assert mine == theirs
            assert type(mine.state) is bytes and mine.state == theirs.state
    assert [vars(e) for e in events] == before, "the pending events stay as they were"
    if sealing:
        assert seal is not None and seal.registered == [
            (uuid.UUID(int=7), "clinic", events[0].data["patient_ref"])] * 4
        sealed_fields = 0
        for event in events:
            data = transcoder.decode(mapper.to_stored_event(event).state)["data"]
            for name in personal.PERSONAL_FIELDS.get(type(event).__name__, ()):
                if name in data:
                    assert data[name] == seal.seal(event.originator_id, event.event_id, name,
                                                   event.data[name])
                    sealed_fields += 1
        assert sealed_fields == 17


def test_a_stored_event_reads_back_as_it_was_recorded():
    seal = FakeSeal()
    mapper = VersionedMapper(transcoder=transcoders()[1])
    mapper.seal = seal  # type: ignore[assignment]
    for event in every_kind_of_event():
        read = mapper.to_domain_event(mapper.to_stored_event(event))
        assert type(read) is type(event) and vars(read) == vars(event)
