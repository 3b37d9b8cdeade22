"""The library's JSON transcoder, encoding with orjson: the same bytes, less CPU.

The library's JSONTranscoder encodes with the standard library's json and a
Python callback for every UUID and datetime (`{"_type_": "uuid_hex",
"_data_": ...}`, `{"_type_": "datetime_iso", "_data_": ...}`): a tenth of a
bulk upload's time. orjson would write UUIDs and datetimes as bare strings,
which read back as strings, so they are wrapped here first, as the library
would wrap them (a UTC or naive datetime's isoformat() left to orjson, which
writes it the same, faster); the rest is written by orjson in one call.

What is stored stays byte for byte what the library writes, so every reader
(the mapper, service/storage/stored.py, the audit, exports) and the chain
hashes over stored bytes are unchanged. Only values whose orjson form is
known to equal the standard library's are handled this way: str, int, bool,
None, floats written without an exponent, dicts with str keys, lists,
tuples, UUIDs and datetimes. Anything else (a Decimal, an enum, a float such
as 1e-05 or NaN, an int orjson refuses, a string that is not valid UTF-8)
sends the whole state to the library's encoder, which answers as it always did.
Decoding is the library's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding, UUIDAsHex

_SCALARS = frozenset({str, int, bool, type(None)})


class _LibraryEncodes(Exception):
    """A value this encoder does not write as the library would: the library encodes."""


def _float(value: float) -> float:
    # repr() (the standard library's json) switches to an exponent below 1e-4 and
    # from 1e16, where orjson writes it differently (1e-05 and 0.00001); NaN and
    # infinities are refused here too (orjson writes null).
    if value == 0.0 or 1e-4 <= abs(value) < 1e16:
        return value
    raise _LibraryEncodes


def _uuid(value: UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": value.hex}


def _datetime(value: datetime) -> dict[str, Any]:
    # orjson writes a datetime as isoformat() does, except an offset with
    # seconds (+01:02:05, written +01:02): those get isoformat() itself.
    zone = value.tzinfo
    return {"_type_": "datetime_iso",
            "_data_": value if zone is UTC or zone is None else value.isoformat()}


def _wrapped(value: Any) -> Any:
    """`value` with its UUIDs and datetimes wrapped as the library stores them
    (the same object when there are none); _LibraryEncodes for anything else."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return _wrapped_dict(value)
    if kind is UUID:
        return _uuid(value)
    if kind is datetime:
        return _datetime(value)
    if kind is float:
        return _float(value)
    if kind is list or kind is tuple:
        items = [_wrapped(item) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    raise _LibraryEncodes


def _wrapped_dict(value: dict[Any, Any]) -> dict[str, Any]:
    """`_wrapped` of a dict. An event's state is a dict of scalars, UUIDs,
    datetimes and dicts: those are looked at here, one call per dict rather than
    one per value, the rest left to `_wrapped`."""
    changed = None
    for key, item in value.items():
        if type(key) is not str:
            raise _LibraryEncodes
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if item == 0.0 or 1e-4 <= abs(item) < 1e16:  # as _float
                continue
            raise _LibraryEncodes
        if kind is UUID:
            new = _uuid(item)
        elif kind is datetime:
            new = _datetime(item)
        elif kind is dict:
            new = _wrapped_dict(item)
            if new is item:
                continue
        else:
            new = _wrapped(item)
            if new is item:
                continue
        if changed is None:
            changed = dict(value)
        changed[key] = new
    return value if changed is None else changed


class OrjsonTranscoder(JSONTranscoder):
    """JSONTranscoder whose `encode` gives the same bytes with orjson (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._same_as_library = False

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        # Wrapped here only as the library's own transcodings wrap them.
        self._same_as_library = (type(self.types.get(UUID)) is UUIDAsHex
                                 and type(self.types.get(datetime)) is DatetimeAsISO)

    def encode(self, obj: Any) -> bytes:
        if self._same_as_library:
            try:
                return orjson.dumps(_wrapped(obj))
            except (_LibraryEncodes, orjson.JSONEncodeError):
                pass
        return super().encode(obj)
