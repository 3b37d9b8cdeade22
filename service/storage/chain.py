"""The integrity chain: each ledger entry's hash covers its stored content and
the hash of the entry before it, so changing, removing, inserting or
reordering any recorded event breaks every hash after it.

The chain is global (one sequence over all programmes) because the global log
is what an auditor pages through: it is computed under the same lock that
assigns positions, so concurrent writers cannot interleave. It hashes what is
stored (the encoded event state), not decoded patient data, so it still
verifies after data that it covers has been made unreadable.

The format is written here, and once more in SQL: on PostgreSQL a single-event
save is chained by the server (migration 0011's `event_ledger_save_event`,
which saves a post in one round trip). A change to the format must change
both; tests/storage/test_save_function.py holds the two to each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
    """The chain hash of one ledger entry (`entry_hashes` of a run of one: the
    format is written in one place)."""
    return entry_hashes(previous, [(position, programme_id.hex, version, topic, state,
                                    event_id.hex, clinic_id)], recorded_at)[0]


def entry_hashes(
    previous: str,
    entries: Iterable[tuple[int, str, int, str, bytes, str, str]],
    recorded_at: datetime,
) -> list[str]:
    """The chain hashes of a run of entries recorded together, each chained to the
    one before: `entry_hash` of each, with the ids given as their `.hex` and the
    record time written once (a thousand entries per bulk chunk).

    `entries`: (position, programme_id hex, version, topic, state, event_id hex,
    clinic_id) of each, in order."""
    when = recorded_at.isoformat()
    sha256 = hashlib.sha256
    hashes = []
    for position, programme_hex, version, topic, state, event_hex, clinic_id in entries:
        # join, as entry_hash: a value that is not text is refused, not formatted.
        header = "\x1f".join([previous, str(position), programme_hex, str(version), topic,
                              event_hex, clinic_id, when])
        previous = sha256(header.encode() + b"\x1e" + state).hexdigest()
        hashes.append(previous)
    return hashes
