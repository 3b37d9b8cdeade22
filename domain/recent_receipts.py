"""The receipts of the posts this process recorded last: a retry answered from memory.

A client retries a post when its answer did not arrive, often while the
first attempt is still in flight (a retry storm). The store answers a retry
(rule 6) after a save it refuses and two reads of the ledger; a retry that
reaches the process that recorded the original can be answered from the
receipt that process handed out, with no statement at all. What is kept is
true for ever once committed: an event's position, version and the save it
was recorded in never change.

Only an exact retry is answered here: every event_id of the post kept, all of
one save of the same programme of the same clinic, each with the content
digest it was recorded with. Anything else (an id not kept, a changed
content, parts of several saves) goes the store's way, which answers it as it
always has (a conflict, or the receipt of several saves).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from domain.application import EventEnvelope, Receipt
    from domain.ledger import LedgerEntry

#: Event ids whose receipts a process keeps (least recently recorded out first):
#: a receipt of one event takes about 1 KB, so at most about 10 MB.
RECEIPTS_KEPT = 10_000


class RecentReceipts:
    """Receipts by (clinic, event_id), with the programme and content digest each
    event was recorded with."""

    def __init__(self, kept: int = RECEIPTS_KEPT) -> None:
        self.kept = kept
        # Keyed by the event id's int, which hashes in C (a UUID hashes in Python).
        self._kept: OrderedDict[tuple[str, int], tuple[UUID, str | None, Receipt]] = (
            OrderedDict())
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, clinic_id: str, programme_id: UUID, entries: Sequence[LedgerEntry],
             receipt: Receipt) -> None:
        """A committed save's receipt, under each of its events' ids (`entries`, its
        ledger entries: their digests; an event the programme recorded on its own
        has none, and is never posted)."""
        with self._lock:
            for entry in entries:
                if entry.content_digest is not None:
                    key = (clinic_id, entry.event_id.int)
                    self._kept[key] = (programme_id, entry.content_digest, receipt)
                    self._kept.move_to_end(key)
            while len(self._kept) > self.kept:
                self._kept.popitem(last=False)

    def replay(self, clinic_id: str, programme_id: UUID,
               envelopes: Sequence[EventEnvelope], digest: Callable[[EventEnvelope], str]
               ) -> Receipt | None:
        """The original receipt, marked replayed, when these envelopes are an exact
        retry of one kept save of this programme; None otherwise. `digest` gives an
        envelope's content digest as the save recorded it (worked out only once
        every id is found: a new post costs a lookup per event)."""
        with self._lock:
            found = [self._kept.get((clinic_id, envelope.event_id.int))
                     for envelope in envelopes]
        if not found or any(kept is None for kept in found):
            return None
        receipt = found[0][2]  # type: ignore[index]
        for envelope, (stored_id, recorded_digest, kept_receipt) in zip(
                envelopes, found, strict=True):  # type: ignore[misc]
            if (stored_id != programme_id or kept_receipt is not receipt
                    or digest(envelope) != recorded_digest):
                return None
        return dataclasses.replace(receipt, replayed=True)
