"""The bodies of the reads of one programme (its state, its history), encoded once.

A programme's state after version N, and its history as it stood after version
N, never change once recorded, but for one thing: an erasure later shows their
personal fields as erased (domain/personal.py). Its current state and history
change only with its version. So each body is encoded once per version (and,
at an explicit version, once more after an erasure) and kept in the worker
(`Bodies`, bounded in bytes), with a digest for its ETag
(service/http/conditional.py): a read of an unchanged programme costs a
fast-forward of the cached programme (one query that finds nothing new), and
one at an explicit version a lookup of its erasure event.

Tenancy holds as everywhere: the clinic is checked first (one index lookup,
`Programmes.require_own`), and a body is kept with its clinic, so a read from
another clinic answers 404 exactly as for a programme that does not exist, in
the same time. Bodies are kept by the programme's stored id (two clinics may
use one programme_id: domain/programme_aliases.py) and show the clinic's own.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import errors
from domain.application import Programmes
from domain.versions import EventFromNewerRelease
from service.storage.replica import Replica, read_history

#: Bytes of bodies a worker keeps (the least recently used go first).
BODY_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Body:
    """An encoded read, whose clinic it is, and a digest of it."""

    clinic_id: str
    data: bytes
    digest: str

    @classmethod
    def of(cls, clinic_id: str, value: Any) -> Body:
        data = json.dumps(value, separators=(",", ":")).encode()
        return cls(clinic_id, data, hashlib.blake2b(data, digest_size=12).hexdigest())


class Bodies:
    """Encoded reads by (kind, programme, version): least recently used first out."""

    def __init__(self, max_bytes: int = BODY_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[tuple[str, UUID, int], Body] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, UUID, int]) -> Body | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: tuple[str, UUID, int], body: Body) -> Body:
        if len(body.data) > self.max_bytes // 8:
            return body  # one huge history would push out everything else
        with self._lock:
            old = self._bodies.pop(key, None)
            self._bytes += len(body.data) - (len(old.data) if old else 0)
            self._bodies[key] = body
            while self._bytes > self.max_bytes:
                _, evicted = self._bodies.popitem(last=False)
                self._bytes -= len(evicted.data)
        return body

    def make(self, key: tuple[str, UUID, int], make: Callable[[], Body]) -> Body:
        body = self.get(key)
        return body if body is not None else self.put(key, make())


class ProgrammeReads:
    """The state and the history of one programme, as the API sends them."""

    def __init__(self, programmes: Programmes, bodies: Bodies | None = None, *,
                 replica: Replica | None = None) -> None:
        self.programmes = programmes
        self.bodies = bodies or Bodies()
        #: A read replica, whose copy of a history answers once it holds the latest version.
        self.replica = replica

    def state(self, clinic_id: str, programme_id: UUID, *, version: int | None = None,
              as_of: datetime | None = None) -> Body:
        """The programme now, after `version`, or as the service knew it `as_of`."""
        # Whose it is before anything kept here is looked at: a body of another
        # clinic's programme found in memory must not answer sooner than none.
        stored_id = self.programmes.require_own(clinic_id, programme_id)
        programme_id = self._shown(programme_id, stored_id)
        if version is None and as_of is None:
            # Encoded under the command lock, from the cached programme itself.
            return self.programmes.with_current(clinic_id, programme_id, lambda programme: (
                self.bodies.make(("state", stored_id, programme.version),
                                 lambda: Body.of(clinic_id, _state(programme, programme_id)))))
        if as_of is not None:
            known = self.programmes.version_as_of(clinic_id, programme_id, as_of)
            version = known if version is None else min(version, known)
        assert version is not None
        at = version
        kind = self._versioned("state", stored_id)
        return self._theirs(clinic_id, self.bodies.make((kind, stored_id, at), lambda: (
            Body.of(clinic_id, _state(self.programmes.programme(clinic_id, programme_id,
                                                                version=at), programme_id)))))

    def history(self, clinic_id: str, programme_id: UUID, *, version: int | None = None,
                clinic_positions: bool = True) -> Body:
        """Every event of the programme, now or as it stood after `version`; its
        positions the clinic's own count (for a token of that clinic), or the global
        log's (`clinic_positions=False`: for tokens of all clinics)."""
        stored_id = self.programmes.require_own(clinic_id, programme_id)
        programme_id = self._shown(programme_id, stored_id)
        kind = "history" if clinic_positions else "history-global"
        if version is None:
            try:
                current: int | None = self.programmes.with_current(
                    clinic_id, programme_id, lambda programme: programme.version)
            except EventFromNewerRelease:
                # The history shows such events as stored (a rolling upgrade);
                # only the replay that gives the cache its key cannot read them.
                current = None
            body = self.bodies.get((kind, stored_id, current)) if current else None
            if body is None:
                events = read_history(self.programmes, self.replica, clinic_id, stored_id,
                                      clinic_positions=clinic_positions)
                # Kept as the version it shows (a post may have come meanwhile).
                body = self.bodies.put((kind, stored_id, events[-1]["version"]),
                                       self._history_body(clinic_id, programme_id, events))
            return self._theirs(clinic_id, body)
        return self._theirs(clinic_id, self.bodies.make(
            (self._versioned(f"{kind}-at", stored_id), stored_id, version),
            lambda: self._history_body(
                clinic_id, programme_id,
                self.programmes.history(clinic_id, programme_id, version,
                                        clinic_positions=clinic_positions))))

    def _shown(self, programme_id: UUID, stored_id: UUID) -> UUID:
        """The programme_id a body of the programme stored as `stored_id` shows: the
        clinic's own, however it was asked for (a body is kept by stored id)."""
        if stored_id == programme_id:
            return programme_id
        return self.programmes.clinic_programme_id(stored_id)

    def _versioned(self, kind: str, programme_id: UUID) -> str:
        """The kind of body a read at an explicit version is kept as: a body kept
        before the programme was erased (in any worker) holds its personal fields,
        so an erased programme's are kept apart (one lookup of its erasure event)."""
        return f"{kind}-erased" if self.programmes.is_erased(programme_id) else kind

    @staticmethod
    def _history_body(clinic_id: str, programme_id: UUID, events: list[dict[str, Any]]
                      ) -> Body:
        return Body.of(clinic_id, {"programme_id": str(programme_id), "clinic_id": clinic_id,
                                   "version": events[-1]["version"], "events": events})

    @staticmethod
    def _theirs(clinic_id: str, body: Body) -> Body:
        """The body, if it is this clinic's programme's (else 404, as for none)."""
        if body.clinic_id != clinic_id:
            raise errors.ProgrammeNotFound("no such programme in this clinic")
        return body


def _state(programme: Any, programme_id: UUID) -> dict[str, Any]:
    """The programme's state as its clinic is shown it: under the clinic's own
    programme_id (the aggregate's id is where it is stored)."""
    state: dict[str, Any] = programme.state()
    if state["programme_id"] != str(programme_id):
        state = {**state, "programme_id": str(programme_id)}
    return state
