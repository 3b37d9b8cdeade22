"""Reading stored events' JSON without the library's mapper, for bulk reads.

How the library stores an event is a storage concern: this is the one place
outside the library that reads its stored format.

The library's JSONTranscoder stores an event's attributes as one JSON object,
with a UUID as `{"_type_": "uuid_hex", "_data_": <UUID.hex>}` and a datetime
as `{"_type_": "datetime_iso", "_data_": <isoformat()>}`. Reads that need
only a few attributes of many events (a programme's history, the
projection) parse a whole page of stored states as one JSON array with the C
decoder and take those attributes out. The mapper instead calls a Python
hook on every JSON object, parses every UUID and datetime and builds an
event object per event: most of the cost of such reads (BENCHMARKS.md).
The stored format stays the library's; a configured cipher or compressor is
undone first, as the mapper would.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from domain.ledger import HistoryEntry
from domain.versions import EventFromNewerRelease, recorded_version, upcast_state


class HistoryRow(NamedTuple):
    """A stored event of one programme as the store holds it, with its ledger entry."""

    version: int
    topic: str
    state: bytes | str  # the library's stored state (JSON, unless compressed or encrypted)
    position: int | None  # None only if the ledger row is missing (the audit reports it)
    recorded_at: str | None  # RFC 3339, UTC
    clinic_id: str | None
    clinic_position: int | None = None  # the event's number among its clinic's events


def parse_states(mapper: Any, states: Sequence[Any]) -> list[Any]:
    """Each stored state as plain JSON (typed values still encoded), or, for a
    state that cannot be read, the exception that says why."""
    if mapper.cipher is None and mapper.compressor is None:
        blobs: list[Any] = [state if type(state) is bytes else _bytes(state) for state in states]
    else:
        blobs = [_unwrap(mapper, state) for state in states]
        if any(isinstance(blob, Exception) for blob in blobs):
            return [blob if isinstance(blob, Exception) else _parse_or_error(blob)
                    for blob in blobs]
    try:
        # One array, one parse: per event, the call cost more than the parsing.
        parsed: list[Any] = json.loads(b"[" + b",".join(blobs) + b"]")
        return parsed
    except ValueError:
        return [_parse_or_error(blob) for blob in blobs]  # find the broken one(s)


@functools.lru_cache(maxsize=256)
def event_type(topic: str) -> str:
    """The event type a stored topic names ("domain.programme:Programme.PainReported"
    -> "PainReported"); cached, as a read names the same few topics thousands of times."""
    return topic.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def typed(value: Any, type_name: str) -> str:
    """The `_data_` of a typed value the transcoder wrote, checking its type."""
    if type(value) is not dict or value.get("_type_") != type_name:
        raise ValueError(f"expected a stored {type_name}, found {value!r:.80}")
    data: str = value["_data_"]
    return data


def uuid_text(value: Any) -> str:
    """A stored UUID in its 8-4-4-4-12 form (what str(UUID) gives)."""
    h = typed(value, "uuid_hex")
    if len(h) != 32:
        raise ValueError(f"not a UUID's 32 hex digits: {h!r:.80}")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _bytes(state: Any) -> bytes:
    return state.encode() if isinstance(state, str) else bytes(state)


def datetime_text(value: Any) -> str:
    """A stored datetime as its isoformat(), which is how the transcoder keeps it."""
    return typed(value, "datetime_iso")


def _unwrap(mapper: Any, state: Any) -> bytes | Exception:
    data = _bytes(state)
    try:
        if mapper.cipher:
            data = mapper.cipher.decrypt(data)
        if mapper.compressor:
            data = mapper.compressor.decompress(data)
    except Exception as error:
        return error
    return data


def _parse_or_error(blob: bytes) -> Any:
    try:
        return json.loads(blob)
    except ValueError as error:
        return error


def history_entries(mapper: Any, rows: Sequence[HistoryRow]) -> list[HistoryEntry]:
    """A programme's stored rows, decoded: a history needs no event objects, and
    the library's decoding (a Python hook per JSON object, a UUID and a datetime
    parsed per field) was most of the cost of reading a long one."""
    states = parse_states(mapper, [row.state for row in rows])
    entries = []
    for row, state in zip(rows, states, strict=True):
        if isinstance(state, Exception):
            raise state  # a stored event the service cannot read: an error, loudly
        recorded = recorded_version(state)
        try:
            upcast_state(row.topic, state)
            newer = False
        except EventFromNewerRelease:
            newer = True  # shown as stored, marked
        entries.append(HistoryEntry(
            version=row.version,
            position=row.position,
            recorded_at=row.recorded_at,
            clinic_id=row.clinic_id,
            clinic_position=row.clinic_position,
            event_id=uuid_text(state["event_id"]),
            type=event_type(row.topic),
            occurred_at=datetime_text(state["occurred_at"]),
            recorded_by=state["recorded_by"],
            data=state["data"],
            schema_version=recorded,
            newer_release=newer,
        ))
    return entries
