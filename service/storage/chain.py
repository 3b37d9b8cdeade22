"""The integrity chain: each ledger entry's hash covers its stored content and
the hash of the entry before it, so changing, removing, inserting or
reordering any recorded event breaks every hash after it.

The chain is global (one sequence over all programmes) because the global log
is what an auditor pages through: it is computed under the same lock that
assigns positions, so concurrent writers cannot interleave. It hashes what is
stored (the encoded event state), not decoded patient data, so it still
verifies after data that it covers has been made unreadable.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

#: The hash "before" the first entry.
GENESIS = "0" * 64


def entry_hash(
    previous: str,
    *,
    position: int,
    programme_id: UUID,
    version: int,
    topic: str,
    state: bytes,
    event_id: UUID,
    clinic_id: str,
    recorded_at: datetime,
) -> str:
    """The chain hash of one ledger entry."""
    digest = hashlib.sha256()
    header = "\x1f".join(
        [
            previous,
            str(position),
            programme_id.hex,
            str(version),
            topic,
            event_id.hex,
            clinic_id,
            recorded_at.isoformat(),
        ]
    )
    digest.update(header.encode())
    digest.update(b"\x1e")
    digest.update(state)
    return digest.hexdigest()
