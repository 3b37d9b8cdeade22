"""Positions as one clinic is shown them: its own events numbered 1, 2, 3, ...

A position in the global log counts every clinic's events. Shown to a clinic,
the gap between two of its receipts would say how much the other clinics
recorded meanwhile, and a read waiting for the next position would say the
moment another clinic posted. So to a token of one clinic every position
shown (receipts, histories, summaries, `X-Projection-Position`) or accepted
(`min_position`) is the clinic's own count of its events:
`event_ledger.clinic_position`, numbered by the store as each event is
recorded (migration 0006). Tokens of all clinics (auditors, network viewers)
keep global positions, on every route.

The answers never change once given (a recorded event keeps its numbers, and
the clinic's count at a global position is fixed once that position is
recorded), so each process keeps the ones it has looked up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Any, Protocol

from domain.application import Receipt
from service.storage.ledger import RecentClinicNumbers

#: How many looked-up numbers a process keeps (least recently used first out).
KEPT = 20_000

#: How many of a clinic's events the log holds up to a global position (the
#: recorders' `clinic_position_at`), by the ledger's index (clinic_id,
#: clinic_position) alone: the ledger has no index on (clinic_id, position)
#: since migration 0009. A clinic's numbers are 1..n in position order (each
#: row is numbered its clinic's last number + 1 under the store's write lock,
#: in the order positions are given: `_insert` in sqlite.py, `record_saves` in
#: postgres.py, `numbers_in_clinics` in ledger.py; tests/reliability checks
#: it), so the count at a position is the largest number whose event is at or
#: before it, found by bisecting the numbers: about log2(n) lookups of one
#: index entry each, wherever the position is. (Walking the clinic's index
#: back from its last number instead, `ORDER BY clinic_position DESC LIMIT 1`,
#: reads every event the clinic recorded after the position: milliseconds for
#: an old position of a large clinic.) `lo` is a number whose event is at or
#: before the position (0: none), `hi` one whose event is after it (or past
#: the clinic's last number); each step joins the event numbered halfway only
#: if it is at or before the position, and moves `lo` up to it or `hi` down.
#: Written once for both stores: {ledger} is the table, {clinic} and
#: {position} the parameters.
COUNT_AT_POSITION = (
    "WITH RECURSIVE probe(lo, hi) AS ("
    " SELECT CAST(0 AS BIGINT), 1 + COALESCE((SELECT MAX(clinic_position) FROM {ledger}"
    " WHERE clinic_id = {clinic}), 0)"
    " UNION ALL"
    " SELECT COALESCE(l.clinic_position, probe.lo),"
    " CASE WHEN l.clinic_position IS NULL THEN (probe.lo + probe.hi) / 2 ELSE probe.hi END"
    " FROM probe LEFT JOIN {ledger} l ON l.clinic_id = {clinic}"
    " AND l.clinic_position = (probe.lo + probe.hi) / 2 AND l.position <= {position}"
    " WHERE probe.hi - probe.lo > 1)"
    " SELECT MAX(lo) AS clinic_position FROM probe"
)


class ClinicPositionQueries(Protocol):
    """What the stores' recorders answer (service/storage/sqlite.py, postgres.py)."""

    #: What it numbered last itself (service/storage/ledger.py).
    clinic_numbers: RecentClinicNumbers

    def clinic_positions(self, clinic_id: str, positions: Collection[int]
                         ) -> dict[int, int]: ...

    def clinic_position_at(self, clinic_id: str, position: int) -> int: ...

    def position_of(self, clinic_id: str, clinic_position: int) -> int | None: ...


class ClinicPositions:
    """Global positions to a clinic's, and back, for the HTTP layer."""

    def __init__(self, queries: ClinicPositionQueries, kept: int = KEPT) -> None:
        self.queries = queries
        self.kept = kept
        self._known: OrderedDict[tuple[str, str, int], int] = OrderedDict()
        self._lock = threading.Lock()

    def _recall(self, key: tuple[str, str, int]) -> int | None:
        with self._lock:
            value = self._known.get(key)
            if value is not None:
                self._known.move_to_end(key)
            return value

    def _keep(self, key: tuple[str, str, int], value: int) -> int:
        with self._lock:
            self._known[key] = value
            while len(self._known) > self.kept:
                self._known.popitem(last=False)
        return value

    def of_events(self, clinic_id: str, positions: Collection[int]) -> dict[int, int]:
        """The clinic's numbers of its own events at these global positions (another
        clinic's event has none). Events this process has just recorded (a receipt's)
        are answered from the recorder's memory, without a query."""
        found = self.queries.clinic_numbers.of(clinic_id, positions)
        if len(found) < len(positions):
            found.update(self.queries.clinic_positions(
                clinic_id, [position for position in positions if position not in found]))
        return found

    def at(self, clinic_id: str, position: int) -> int:
        """How many of the clinic's events the global log holds up to `position`:
        what a read that reflects `position` reflects of this clinic."""
        key = ("at", clinic_id, position)
        known = self._recall(key)
        if known is not None:
            return known
        return self._keep(key, self.queries.clinic_position_at(clinic_id, position))

    def global_of(self, clinic_id: str, clinic_position: int) -> int | None:
        """The global position of the clinic's event number `clinic_position`; None
        if the clinic has not recorded that many."""
        if clinic_position < 1:
            return None
        key = ("global", clinic_id, clinic_position)
        known = self._recall(key)
        if known is not None:
            return known
        found = self.queries.position_of(clinic_id, clinic_position)
        return found if found is None else self._keep(key, found)

    def receipt(self, receipt: Receipt) -> dict[str, Any]:
        """A receipt's body with its clinic's positions."""
        body = receipt.body()
        numbers = self.of_events(receipt.clinic_id,
                                 [item["position"] for item in body["recorded"]])
        body["recorded"] = [{**item, "position": numbers[item["position"]]}
                            for item in body["recorded"]]
        return body

    def receipts(self, clinic_id: str, receipts: Collection[Receipt]
                 ) -> dict[int, dict[str, Any]]:
        """Several receipts' bodies (by id()) with the clinic's positions, in one query."""
        numbers = self.of_events(clinic_id, [item["position"] for receipt in receipts
                                             for item in receipt.recorded])
        bodies = {}
        for receipt in receipts:
            body = receipt.body()  # a new dict, its `recorded` the receipt's own: replaced
            body["recorded"] = [{**item, "position": numbers[item["position"]]}
                                for item in receipt.recorded]
            bodies[id(receipt)] = body
        return bodies
