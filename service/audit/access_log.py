"""Verifying the access log's own integrity chain (service/storage/access_chain.py).

The walk reads the log a window at a time, recomputes each entry's hash from
the one before, and stops at the first entry that does not match: one that
was changed, or that follows an entry deleted, inserted or moved. Entries
from before the chain existed carry no hash and are not checked; an entry
without a hash after the chain began was put there by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.storage.access_chain import GENESIS, entry_hash
from service.storage.database import Database

WINDOW = 2000


@dataclass
class AccessLogCheck:
    """What the walk found: how many entries it checked, and the first break."""

    checked: int = 0
    failure: tuple[int, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"entries_checked": self.checked,
                "failure": {"entry_id": self.failure[0], "detail": self.failure[1]}
                if self.failure else None}


def verify_access_log(database: Database, anchors: Sequence[tuple[int, str]] = (),
                      window: int = WINDOW) -> AccessLogCheck:
    """Walk the chain; `anchors` (entry id, chain hash), from the checkpoint log,
    must still be there with the same hash, so the newest entries cannot be
    cut off unseen."""
    check = AccessLogCheck()
    expected = dict(anchors)
    previous: str | None = None  # None until the first chained entry
    after = 0
    while check.failure is None:
        with database.transaction(write=False) as cursor:
            rows = cursor.execute("SELECT * FROM access_log WHERE entry_id > %s "
                                  "ORDER BY entry_id LIMIT %s", [after, window]).fetchall()
        if not rows:
            break
        for row in rows:
            stored = row.get("chain_hash")
            entry_id = int(row["entry_id"])
            if stored is None and previous is None:
                continue  # written before the chain existed
            if stored is None:
                check.failure = (entry_id, f"access-log entry {entry_id} has no chain hash but "
                                 "follows chained entries: it was inserted by hand")
                break
            if entry_hash(previous or GENESIS, row) != stored:
                check.failure = (entry_id, f"access-log entry {entry_id} does not match its "
                                 "chain hash: it was changed, or an entry before it was "
                                 "deleted, inserted or moved")
                break
            if entry_id in expected and expected[entry_id] != stored:
                check.failure = (entry_id, f"access-log entry {entry_id} differs from the one "
                                 "the checkpoint log recorded: it was replaced, and the chain "
                                 "recomputed")
                break
            previous = stored
            check.checked += 1
        after = int(rows[-1]["entry_id"])
    beyond = [entry_id for entry_id in expected if entry_id > after]
    if check.failure is None and beyond:
        check.failure = (after + 1, f"the access log ends at entry {after}, but the checkpoint "
                         f"log recorded entry {max(beyond)}: its newest entries were deleted")
    return check
