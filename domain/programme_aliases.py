"""Programme ids are the clinic's own: where each clinic's programme is stored.

A clinic names its programmes (the programme_id in its URLs and posts), and
two clinics may use the same programme_id without learning of each other.
The store keeps one aggregate per programme under a globally unique stored
id: the programme_id itself in the normal case (so stores written before
this need no rewrite), and, only when another clinic already holds that id,
`aliased_id(clinic, programme_id)`, derived from both. The derivation is
fixed, so every process and host finds the same stored id without asking
anyone; the alias (stored id -> clinic, programme_id) is recorded with the
programme's first event, in the same transaction (`LedgerEntry.alias_of`),
so it can never disagree with the events and costs no write of its own.

Resolving (clinic, programme_id) to the stored id is what `Programmes.owners`
already did for every path, one index lookup, now asked for the id and its
alias together (the same single query whether the id is another clinic's or
nobody's). Mapping a stored id back to the clinic's programme_id is needed
only for aliases, and those are always version-5 UUIDs: other stored ids
never cost a lookup (`is_candidate`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar
from uuid import UUID, uuid5

#: Namespace of the stored ids of programmes whose programme_id another clinic held first.
ALIAS_NAMESPACE = UUID("6b1e2f4a-3c7d-5e9f-8a1b-2c3d4e5f6a7b")

#: How many derived ids a resolution follows (one, but where someone has
#: started a programme under the derived id itself) before giving up.
ALIAS_DEPTH = 4

#: How many entries each of a process's alias memories keeps.
ALIASES_KEPT = 20_000


def aliased_id(clinic_id: str, programme_id: UUID) -> UUID:
    """The stored id of the clinic's programme `programme_id` when another clinic
    holds that id first: the same in every process, every time."""
    return uuid5(ALIAS_NAMESPACE, f"{clinic_id}/{programme_id}")


def is_candidate(stored_id: UUID) -> bool:
    """Whether a stored id can be an alias (aliases are version-5 UUIDs; a client's
    own version-4 ids never are, and cost no lookup)."""
    return stored_id.version == 5


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

_MISSING = object()


class Remembered(Generic[Key, Value]):
    """A bounded memory of facts that never change once true (least recently
    used first out)."""

    def __init__(self, kept: int = ALIASES_KEPT) -> None:
        self.kept = kept
        self._items: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key, default: object = _MISSING) -> Value | object:
        with self._lock:
            value = self._items.get(key, _MISSING)  # type: ignore[arg-type]
            if value is _MISSING:
                return default
            self._items.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.kept:
                self._items.popitem(last=False)


MISSING = _MISSING
