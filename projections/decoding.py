"""Decoding the notification log for the projection: just what the metrics read.

The metrics need five attributes of an event (its id, clinical time, data,
and on ProgrammeStarted the clinic and programme). The library's mapper
builds a full event object instead: its JSON decoder calls a Python hook on
every object, parses every UUID and datetime, and resolves the topic per
event. That was half of a rebuild's time (see BENCHMARKS.md, P3). Here a
whole page of stored states is parsed as one JSON array by the C decoder,
and only the five attributes are taken out of it.

The stored form is the library's JSONTranscoder's: a UUID is
`{"_type_": "uuid_hex", "_data_": <hex>}` and a datetime
`{"_type_": "datetime_iso", "_data_": <isoformat()>}`, decoded here exactly
as the library does (`datetime.fromisoformat`). With a cipher or a
compressor configured the states are not JSON, and the library's mapper
decodes them. An event that cannot be decoded is returned with its error,
to be parked (engine.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from projections.engine import Recorded


@dataclass(slots=True)
class ProjectedEvent:
    """The attributes of a recorded event that the projection reads."""

    event_id: str  # UUID.hex
    occurred_at: datetime
    data: dict[str, Any]
    clinic_id: str | None = None  # ProgrammeStarted only
    programme_id: str | None = None  # ProgrammeStarted only, as str(UUID)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProjectedEvent:
        """From a stored state as the library's JSON holds it (typed values still encoded)."""
        programme_id = state.get("programme_id")
        return cls(
            event_id=_typed(state["event_id"], "uuid_hex"),
            occurred_at=datetime.fromisoformat(_typed(state["occurred_at"], "datetime_iso")),
            data=state["data"],
            clinic_id=state.get("clinic_id"),
            programme_id=None if programme_id is None
            else _canonical_uuid(_typed(programme_id, "uuid_hex")),
        )

    @classmethod
    def from_domain_event(cls, event: Any) -> ProjectedEvent:
        """From an event object (decoded by the library's mapper, or made by the aggregate)."""
        programme_id = getattr(event, "programme_id", None)
        return cls(
            event_id=event.event_id.hex,
            occurred_at=event.occurred_at,
            data=event.data,
            clinic_id=getattr(event, "clinic_id", None),
            programme_id=None if programme_id is None else str(programme_id),
        )


def _typed(value: Any, type_name: str) -> str:
    if type(value) is not dict or value.get("_type_") != type_name:
        raise ValueError(f"expected a stored {type_name}, found {value!r:.80}")
    data: str = value["_data_"]
    return data


def _canonical_uuid(hex_digits: str) -> str:
    h = hex_digits
    if len(h) != 32:
        raise ValueError(f"not a UUID's 32 hex digits: {h!r:.80}")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: A stored event as the recorders' `log_rows` return it:
#: (position, programme id (a UUID, or its hex digits), version, topic, state).
LogRow = tuple[int, Any, int, str, bytes]


def decode(mapper: Any, notifications: Sequence[Any]) -> list[Recorded]:
    """Decode the library's notifications; one that cannot be decoded is kept, to be parked."""
    return decode_rows(mapper, [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                                for n in notifications])


def decode_rows(mapper: Any, rows: Sequence[LogRow]) -> list[Recorded]:
    """Decode a page of the log; one event that cannot be decoded is kept, to be parked."""
    if mapper.cipher is not None or mapper.compressor is not None:
        return [_decode_with_mapper(mapper, row) for row in rows]
    blobs = [bytes(row[4]) for row in rows]
    try:
        states: list[Any] = json.loads(b"[" + b",".join(blobs) + b"]")
    except ValueError:
        states = [_parse_or_error(blob) for blob in blobs]  # find the broken one(s)
    decoded = []
    for (position, programme_id, version, topic, _), state in zip(rows, states, strict=True):
        programme = _programme_key(programme_id)
        type_name = topic.rsplit(".", 1)[-1]
        try:
            if isinstance(state, Exception):
                raise state
            event = ProjectedEvent.from_state(state)
        except Exception as error:
            decoded.append(Recorded(position, programme, type_name, None,
                                    f"{type(error).__name__}: {error}", version == 1))
            continue
        decoded.append(Recorded(position, programme, type_name, event, None, version == 1))
    return decoded


def _programme_key(programme_id: Any) -> int:
    if type(programme_id) is str:
        return int(programme_id.replace("-", ""), 16)
    key: int = programme_id.int
    return key


def _parse_or_error(blob: bytes) -> Any:
    try:
        return json.loads(blob)
    except ValueError as error:
        return error


def _decode_with_mapper(mapper: Any, row: LogRow) -> Recorded:
    position, programme_id, version, topic, state = row
    programme = _programme_key(programme_id)
    try:
        event = mapper.to_domain_event(StoredEvent(
            originator_id=UUID(int=programme), originator_version=version, topic=topic,
            state=bytes(state)))
    except Exception as error:
        return Recorded(position, programme, topic.rsplit(".", 1)[-1], None,
                        f"{type(error).__name__}: {error}", version == 1)
    return Recorded(position, programme, type(event).__name__,
                    ProjectedEvent.from_domain_event(event), None, version == 1)
