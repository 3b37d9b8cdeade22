"""Statements that the log's stored bytes were rewritten: recorded, signed, shown.

`traction migrate` writes one when it seals personal fields an earlier
release stored in the clear (service/audit/reseal.py); `traction audit
verify` shows each, and fails if one's signature does not hold.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from service.audit.checkpoints import CheckpointKey, CheckpointKeys
from service.storage import migrations
from service.storage.database import Database


@dataclass(frozen=True)
class Rewrite:
    """A signed statement that the log's stored bytes were rewritten, from where."""

    rewritten_at: str
    first_position: int
    head_position: int
    old_head_hash: str
    new_head_hash: str
    events_sealed: int
    superseded_checkpoints: list[dict[str, Any]]
    reason: str
    signature: str | None

    def message(self) -> str:
        return "\n".join(["traction-ledger chain rewrite v1", self.rewritten_at,
                          str(self.first_position), str(self.head_position),
                          self.old_head_hash, self.new_head_hash, str(self.events_sealed),
                          json.dumps(self.superseded_checkpoints, sort_keys=True),
                          self.reason])

    def as_dict(self) -> dict[str, Any]:
        return {"rewritten_at": self.rewritten_at, "first_position": self.first_position,
                "head_position": self.head_position, "old_head_hash": self.old_head_hash,
                "new_head_hash": self.new_head_hash, "events_sealed": self.events_sealed,
                "superseded_checkpoints": self.superseded_checkpoints,
                "reason": self.reason, "signature": self.signature}

    def describe(self) -> str:
        return (f"on {self.rewritten_at} `traction migrate` sealed {self.events_sealed} "
                f"events an earlier release had recorded in the clear: positions "
                f"{self.first_position} to {self.head_position} were rehashed; the head at "
                f"{self.head_position} was {self.old_head_hash} and is {self.new_head_hash}")


def sign(key: CheckpointKey | None, rewrite: Rewrite) -> str | None:
    """The statement's signature under the key that signs checkpoints (None without one)."""
    if key is None:
        return None
    return f"v1:{key.key_id}:{key.statement_mac(rewrite.message())}"


def check(keys: CheckpointKeys, rewrite: Rewrite) -> str:
    """"valid", "invalid", "unknown-key" (signed by a key this host does not hold)
    or "unsigned" (no key was set when it was written)."""
    if rewrite.signature is None:
        return "unsigned"
    version, _, rest = rewrite.signature.partition(":")
    key_id, _, _ = rest.partition(":")
    if version != "v1":
        return "invalid"
    key = keys.by_id(key_id)
    if key is None:
        return "unknown-key"
    return "valid" if hmac.compare_digest(sign(key, rewrite) or "", rewrite.signature) \
        else "invalid"


def rewrites(database: Database) -> list[Rewrite]:
    """Every recorded rewrite, oldest first."""
    with database.transaction(write=False) as cursor:
        rows = cursor.execute("SELECT * FROM chain_rewrites ORDER BY rewritten_at").fetchall()
    return [Rewrite(row["rewritten_at"], int(row["first_position"]),
                    int(row["head_position"]), row["old_head_hash"], row["new_head_hash"],
                    int(row["events_sealed"]), json.loads(row["superseded_checkpoints"]),
                    row["reason"], row["signature"]) for row in rows]


def recorded_rewrites(database: Database) -> list[Rewrite]:
    """The rewrites recorded in a store (none in one older than the table)."""
    if not migrations.has_key_tables(database.store):
        return []
    return rewrites(database)
