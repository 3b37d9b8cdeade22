"""Decoding the notification log for the projection: just what the metrics read.

The metrics need five attributes of an event (its id, clinical time, data,
and on ProgrammeStarted the clinic and programme). The library's mapper
builds a whole event object instead, which was half of a rebuild's time
(BENCHMARKS.md, P3); here a page of stored states is parsed at once and the
five are taken out (service/storage/stored.py). An event that cannot be decoded is
returned with its error, to be parked (engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.versions import upcast_state
from projections.engine import Recorded
from service.storage import stored


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
        event_id, occurred_at = state["event_id"], state["occurred_at"]
        if (type(event_id) is dict and event_id.get("_type_") == "uuid_hex"
                and type(occurred_at) is dict and occurred_at.get("_type_") == "datetime_iso"):
            # The common case, checked inline: a million events a rebuild.
            event_id, occurred_at = event_id["_data_"], occurred_at["_data_"]
        else:  # raises, saying which and why
            event_id = stored.typed(event_id, "uuid_hex")
            occurred_at = stored.datetime_text(occurred_at)
        programme_id = state.get("programme_id")
        return cls(
            event_id,
            # Exactly what the library's DatetimeAsISO decoding does.
            datetime.fromisoformat(occurred_at),
            state["data"],
            state.get("clinic_id"),
            None if programme_id is None else stored.uuid_text(programme_id),
        )

    @classmethod
    def from_domain_event(cls, event: Any) -> ProjectedEvent:
        """From an event object (as the aggregate makes it, or the library's mapper)."""
        programme_id = getattr(event, "programme_id", None)
        return cls(
            event_id=event.event_id.hex,
            occurred_at=event.occurred_at,
            data=event.data,
            clinic_id=getattr(event, "clinic_id", None),
            programme_id=None if programme_id is None else str(programme_id),
        )


#: A stored event as the recorders' `log_rows` return it:
#: (position, programme id as an int, version, topic, state).
LogRow = tuple[int, int, int, str, bytes]


def decode(mapper: Any, notifications: Sequence[Any]) -> list[Recorded]:
    """Decode the library's notifications; one that cannot be decoded is kept, to be parked."""
    return decode_rows(mapper, [(n.id, n.originator_id.int, n.originator_version, n.topic,
                                 n.state) for n in notifications])


def decode_rows(mapper: Any, rows: Sequence[LogRow]) -> list[Recorded]:
    """Decode a page of the log; one event that cannot be decoded is kept, to be parked."""
    states = stored.parse_states(mapper, [row[4] for row in rows])
    decoded = []
    for (position, programme, version, topic, _), state in zip(rows, states, strict=True):
        type_name = stored.event_type(topic)
        try:
            if isinstance(state, Exception):
                raise state
            # Older versions are brought up to date; a newer one (a rolling
            # upgrade) raises, and is parked until this runner is upgraded.
            event = ProjectedEvent.from_state(upcast_state(topic, state))
        except Exception as error:
            decoded.append(Recorded(position, programme, type_name, None,
                                    f"{type(error).__name__}: {error}", version == 1))
            continue
        decoded.append(Recorded(position, programme, type_name, event, None, version == 1))
    return decoded

