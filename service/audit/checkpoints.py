"""Signed checkpoints of the chain head: what makes a truncated tail visible.

The chain alone cannot show that its last entries were deleted: what is left
is still a valid chain. A checkpoint records "at `signed_at` the log had
reached `position`, whose chain hash was `chain_hash`", signed with
HMAC-SHA256 under `TRACTION_CHECKPOINT_KEY`. Verification then also demands
that every checkpoint it can authenticate is still covered by the log, and
with the same hash. Without the key nothing is signed or written, and
verification says that it cannot detect a truncated tail.

Checkpoints are written by `traction audit checkpoint` (schedule it: see the
README), and after every successful `traction audit verify`, `traction audit
export` and `GET /v1/audit/verify`, once per new head. A checkpoint kept
only in the same database stops accidents and clumsy tampering; copy them
out (an export carries them, and `traction audit checkpoint` prints its line)
to stand against someone who can also delete checkpoint rows.

A signature reads `v1:<key id>:<hex HMAC>`; the key id (the first 8 hex
digits of SHA-256 of the key) lets a rotated key's older checkpoints be told
apart from forged ones: they are reported as unverifiable, not as broken.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.storage.database import Database

KEY_VARIABLE = "TRACTION_CHECKPOINT_KEY"
TABLE = "chain_checkpoints"
NO_KEY_WARNING = (
    f"{KEY_VARIABLE} is not set: no signed checkpoints are written or checked, "
    "so a truncated tail (the newest events deleted) cannot be detected"
)


@dataclass(frozen=True)
class Checkpoint:
    position: int
    chain_hash: str
    signed_at: str
    signature: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "chain_hash": self.chain_hash,
                "signed_at": self.signed_at, "signature": self.signature}


class CheckpointKey:
    """The HMAC key that signs and authenticates checkpoints."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError(f"{KEY_VARIABLE} is empty")
        self._secret = secret.encode()
        self.key_id = hashlib.sha256(self._secret).hexdigest()[:8]

    @classmethod
    def from_secret(cls, secret: str | None) -> CheckpointKey | None:
        """The key (TRACTION_CHECKPOINT_KEY), or None when it is not set."""
        return cls(secret) if secret else None

    def _mac(self, position: int, chain_hash: str, signed_at: str) -> str:
        message = f"traction-ledger checkpoint v1\n{position}\n{chain_hash}\n{signed_at}"
        return self.mac(message)

    def mac(self, message: str) -> str:
        """HMAC-SHA256 of a statement under this key (checkpoints, rewrites), in hex."""
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, position: int, chain_hash: str) -> Checkpoint:
        signed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        mac = self._mac(position, chain_hash, signed_at)
        return Checkpoint(position, chain_hash, signed_at, f"v1:{self.key_id}:{mac}")

    def check(self, checkpoint: Checkpoint) -> str:
        """"valid", "invalid" (forged or altered) or "other-key" (signed by another key)."""
        version, _, rest = checkpoint.signature.partition(":")
        key_id, _, mac = rest.partition(":")
        if version != "v1" or not mac:
            return "invalid"
        if key_id != self.key_id:
            return "other-key"
        expected = self._mac(checkpoint.position, checkpoint.chain_hash, checkpoint.signed_at)
        return "valid" if hmac.compare_digest(expected, mac) else "invalid"


class Checkpoints:
    """The chain_checkpoints table (one of the service's own tables)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def all(self) -> list[Checkpoint]:
        """Every checkpoint, in position order (few: one per scheduled run)."""
        with self.db.transaction() as cursor:
            rows = cursor.execute(
                f"SELECT position, chain_hash, signed_at, signature FROM {TABLE} "
                "ORDER BY position"
            ).fetchall()
        return [Checkpoint(int(r["position"]), r["chain_hash"], r["signed_at"],
                           r["signature"]) for r in rows]

    def add(self, checkpoint: Checkpoint) -> bool:
        """Store a checkpoint; False if one at that position exists already."""
        with self.db.transaction() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (position, chain_hash, signed_at, signature) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (position) DO NOTHING",
                [checkpoint.position, checkpoint.chain_hash, checkpoint.signed_at,
                 checkpoint.signature],
            )
            stored = cursor.execute(
                f"SELECT signature FROM {TABLE} WHERE position = %s", [checkpoint.position]
            ).fetchone()
        return stored is not None and stored["signature"] == checkpoint.signature


def authenticated(key: CheckpointKey | None, checkpoints: Sequence[Checkpoint]
                  ) -> tuple[list[Checkpoint], list[Checkpoint], int]:
    """(checkpoints the key authenticates, ones it rejects, how many it cannot judge)."""
    if key is None:
        return [], [], len(checkpoints)
    valid, invalid, other = [], [], 0
    for checkpoint in checkpoints:
        verdict = key.check(checkpoint)
        if verdict == "valid":
            valid.append(checkpoint)
        elif verdict == "invalid":
            invalid.append(checkpoint)
        else:
            other += 1
    return valid, invalid, other
