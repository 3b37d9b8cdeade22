"""Signed checkpoints of the chain head: what makes a truncated tail visible.

The chain alone cannot show that its last entries were deleted: what is left
is still a valid chain. A checkpoint records "at `signed_at` the log had
reached `position`, whose chain hash was `chain_hash`", signed with
HMAC-SHA256 under `TRACTION_CHECKPOINT_KEY`. Verification then demands that
every checkpoint is authentic and still covered by the log, with the same
hash.

Three things keep someone who can write to the database from undoing that:

- **Checkpoints form a chain of their own**: each signs the signature of the
  checkpoint before it (`previous`), so a checkpoint row deleted from the
  middle breaks the next one's link.
- **They are also appended to a file outside the database**
  (`TRACTION_CHECKPOINT_LOG`, one JSON line each, which the operator ships
  elsewhere): deleting the newest checkpoint rows together with the events
  after them leaves the file's lines unmatched, and verification says so.
- **Verification fails closed**: without a key, or without the file, it
  cannot say the log is whole, and says so (service/audit/verify.py); a
  row it cannot authenticate (forged, altered, or signed by a key this host
  does not hold) is an error, never skipped.

A signing key must hold at least 256 bits of randomness (`traction audit
new-key` prints one). Keys are rotated by moving the old one to
`TRACTION_CHECKPOINT_PREVIOUS_KEYS`: it still authenticates what it signed,
and signs nothing new. A signature reads `v2:<key id>:<hex HMAC>` (the key id
is the first 8 hex digits of SHA-256 of the key, so the right key is found);
`v1:` signatures, of releases before 0.3, are not linked to each other and
still verify under the key that made them.

Checkpoints are written by `traction audit checkpoint` (schedule it: see
OPERATIONS.md), and after every successful verification, once per new head.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.storage.database import Database

KEY_VARIABLE = "TRACTION_CHECKPOINT_KEY"
PREVIOUS_KEYS_VARIABLE = "TRACTION_CHECKPOINT_PREVIOUS_KEYS"
LOG_VARIABLE = "TRACTION_CHECKPOINT_LOG"
TABLE = "chain_checkpoints"
#: 256 bits: an HMAC key should be as long as the hash's output.
KEY_BYTES = 32
NO_KEY = (
    f"{KEY_VARIABLE} is not set: no signed checkpoint can be checked, so this cannot "
    "show that the log is whole (the newest events may have been deleted, or the chain "
    "recomputed after an edit)"
)
NO_LOG = (
    f"{LOG_VARIABLE} is not set: checkpoints are not checked against the copy kept outside "
    "the database, so the newest checkpoints deleted together with the events after them "
    "would go unseen"
)
CHAIN_ONLY = (
    "checkpoints were not checked: the chain is consistent, but a "
    "truncated tail or a chain recomputed after an edit would go unseen"
)


class WeakKey(ValueError):
    """A signing key that is not at least 256 bits of randomness."""


def generate_key() -> str:
    """A new signing key: 256 random bits, as 64 hex digits."""
    return secrets.token_hex(KEY_BYTES)


def key_bytes(secret: str) -> bytes:
    """The random bytes a signing key encodes (hex, or base64 as `openssl rand
    -base64 32` prints); WeakKey when it encodes fewer than 256 bits, or bytes
    too uniform to have come from a random source."""
    text = secret.strip()  # as read from the environment or a secret's file
    decoded: bytes | None = None
    if text and all(c in string.hexdigits for c in text) and len(text) % 2 == 0:
        decoded = bytes.fromhex(text)
    else:
        try:
            padded = text + "=" * (-len(text) % 4)
            decoded = base64.b64decode(padded.replace("-", "+").replace("_", "/"),
                                       validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    advice = ("generate one with `traction audit new-key` (or `openssl rand -hex 32`); a key "
              f"that signed checkpoints before goes on verifying them in {PREVIOUS_KEYS_VARIABLE}")
    if not text:
        raise WeakKey(f"the key is empty; {advice}")
    if decoded is None:
        raise WeakKey(f"the key is neither hex nor base64, so its randomness cannot be "
                      f"counted; {advice}")
    if len(decoded) < KEY_BYTES:
        raise WeakKey(f"the key holds {len(decoded) * 8} bits, fewer than the "
                      f"{KEY_BYTES * 8} a signing key needs; {advice}")
    # 32 random bytes have ~30 distinct values; fewer than 16 is not chance.
    if len(set(decoded)) < 16:
        raise WeakKey(f"the key's bytes repeat too much to be random; {advice}")
    return decoded


@dataclass(frozen=True)
class Checkpoint:
    position: int
    chain_hash: str
    signed_at: str
    signature: str
    #: The signature of the checkpoint before this one ("" for the first);
    #: None for a checkpoint of an earlier release, which links to nothing.
    previous: str | None = None
    #: The access log's newest chained entry when it was signed (entry id, chain
    #: hash). Kept in the checkpoint log only, out of the intruder's reach, so
    #: that cutting off the access log's newest entries is seen too.
    access_head: tuple[int, str] | None = None

    @property
    def linked(self) -> bool:
        return self.signature.startswith("v2:")

    def as_dict(self) -> dict[str, Any]:
        head = self.access_head
        return {"position": self.position, "chain_hash": self.chain_hash,
                "signed_at": self.signed_at, "signature": self.signature,
                "previous": self.previous,
                "access_log_head": {"entry_id": head[0], "chain_hash": head[1]}
                if head else None}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Checkpoint:
        """A checkpoint from its JSON form; ValueError if it is not one."""
        position, previous = record.get("position"), record.get("previous")
        fields = [record.get(name) for name in ("chain_hash", "signed_at", "signature")]
        if (not isinstance(position, int) or isinstance(position, bool) or position < 1
                or not all(isinstance(f, str) for f in fields)
                or not (previous is None or isinstance(previous, str))):
            raise ValueError("not a checkpoint")
        head = record.get("access_log_head")
        access_head = None
        if head is not None:
            entry_id = head.get("entry_id") if isinstance(head, dict) else None
            chain_hash = head.get("chain_hash") if isinstance(head, dict) else None
            if (not isinstance(entry_id, int) or isinstance(entry_id, bool)
                    or not isinstance(chain_hash, str)):
                raise ValueError("not a checkpoint")
            access_head = (entry_id, chain_hash)
        return cls(position, *fields, previous=previous,  # type: ignore[arg-type]
                   access_head=access_head)


class CheckpointKey:
    """One HMAC key that signs or authenticates checkpoints."""

    def __init__(self, secret: str, *, signing: bool = True) -> None:
        if signing:
            key_bytes(secret)  # WeakKey unless it is strong enough to sign
        elif not secret.strip():
            raise WeakKey(f"an empty key in {PREVIOUS_KEYS_VARIABLE}")
        self._secret = secret.encode()
        self.key_id = hashlib.sha256(self._secret).hexdigest()[:8]

    def mac(self, checkpoint: Checkpoint) -> str:
        if checkpoint.linked:
            message = (f"traction-ledger checkpoint v2\n{checkpoint.position}\n"
                       f"{checkpoint.chain_hash}\n{checkpoint.signed_at}\n"
                       f"{checkpoint.previous or ''}")
        else:
            message = (f"traction-ledger checkpoint v1\n{checkpoint.position}\n"
                       f"{checkpoint.chain_hash}\n{checkpoint.signed_at}")
        return self.statement_mac(message)

    def statement_mac(self, message: str) -> str:
        """HMAC-SHA256 of a statement under this key, in hex: checkpoints, and the
        statements of recorded rewrites (service/audit/rewrites.py), each message
        beginning with what it is."""
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, position: int, chain_hash: str, previous: str) -> Checkpoint:
        signed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        unsigned = Checkpoint(position, chain_hash, signed_at, f"v2:{self.key_id}:", previous)
        return Checkpoint(position, chain_hash, signed_at,
                          f"v2:{self.key_id}:{self.mac(unsigned)}", previous)


class CheckpointKeys:
    """The key that signs new checkpoints and the earlier ones that still
    authenticate what they signed (key rotation)."""

    def __init__(self, current: CheckpointKey | None,
                 previous: Sequence[CheckpointKey] = ()) -> None:
        self.current = current
        self._by_id = {k.key_id: k for k in [*previous, *([current] if current else [])]}

    @classmethod
    def from_secrets(cls, current: str | None, previous: Iterable[str] = ()) -> CheckpointKeys:
        """TRACTION_CHECKPOINT_KEY and TRACTION_CHECKPOINT_PREVIOUS_KEYS; WeakKey
        when the current key is not strong enough to sign."""
        return cls(CheckpointKey(current) if current else None,
                   [CheckpointKey(secret, signing=False) for secret in previous])

    @property
    def configured(self) -> bool:
        return bool(self._by_id)

    def by_id(self, key_id: str) -> CheckpointKey | None:
        """The key (current or previous) of this id, if this host holds it."""
        return self._by_id.get(key_id)

    def check(self, checkpoint: Checkpoint) -> str:
        """"valid", "invalid" (forged or altered) or "unknown-key" (signed by a key
        this host does not hold: a forgery, or a key left out on rotation)."""
        version, _, rest = checkpoint.signature.partition(":")
        key_id, _, mac = rest.partition(":")
        if version not in ("v1", "v2") or not mac:
            return "invalid"
        if (version == "v2") != (checkpoint.previous is not None):
            return "invalid"
        key = self._by_id.get(key_id)
        if key is None:
            return "unknown-key"
        return "valid" if hmac.compare_digest(key.mac(checkpoint), mac) else "invalid"


class CheckpointLogUnwritable(OSError):
    """The checkpoint log cannot be appended to: no checkpoint is written."""


class CheckpointLog:
    """The copy of every checkpoint outside the database: a file of JSON lines,
    only ever appended to (TRACTION_CHECKPOINT_LOG)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        """Append one line and make it durable before the checkpoint row commits."""
        line = json.dumps({"kind": "checkpoint", **checkpoint.as_dict()},
                          separators=(",", ":")) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())  # one write: concurrent writers' lines never mix
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            raise CheckpointLogUnwritable(
                f"cannot append to the checkpoint log {self.path} "
                f"({error.strerror or error})") from None

    def read(self) -> list[Checkpoint]:
        """Every checkpoint in the file (none if it does not exist yet);
        ValueError naming the first line that is not a checkpoint."""
        if not self.path.exists():
            return []
        checkpoints = []
        with self.path.open(encoding="utf-8") as lines:
            for number, text in enumerate(lines, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                    checkpoints.append(Checkpoint.from_dict(record))
                except (ValueError, AttributeError):
                    raise ValueError(f"line {number} of the checkpoint log {self.path} is not "
                                     "a checkpoint: the file was damaged or edited") from None
        return checkpoints


class Checkpoints:
    """The chain_checkpoints table (one of the service's own tables)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def all(self) -> list[Checkpoint]:
        """Every checkpoint, in position order (few: one per scheduled run)."""
        # SELECT *: a store of an earlier release, not yet migrated, has no links.
        with self.db.transaction(write=False) as cursor:
            rows = cursor.execute(f"SELECT * FROM {TABLE} ORDER BY position").fetchall()
        return [Checkpoint(int(r["position"]), r["chain_hash"], r["signed_at"],
                           r["signature"], r.get("previous_signature")) for r in rows]

    def linkable(self) -> bool:
        """Whether the table can hold linked checkpoints (the store is migrated)."""
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute(f"SELECT * FROM {TABLE} LIMIT 1").fetchone()
            if row is not None:
                return "previous_signature" in row
            if cursor.postgres:
                return cursor.execute(
                    "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND "
                    "column_name = 'previous_signature' AND table_schema = current_schema()",
                    [TABLE]).fetchone() is not None
            names = cursor.execute(f"PRAGMA table_info({TABLE})").fetchall()
            return any(column["name"] == "previous_signature" for column in names)

    def extend(self, key: CheckpointKey, head: tuple[int, str],
               sink: CheckpointLog) -> Checkpoint | None:
        """Sign `head`, linked to the latest checkpoint, and store it in the table
        and the file; None if a checkpoint at or beyond it exists already.

        One writer at a time (the table locked), so that no two checkpoints link
        to the same one; the file's line is written before the row commits, so
        the file never lacks a checkpoint the table has kept. Nothing is signed
        on a store of an earlier release until it is migrated."""
        if not self.linkable():
            return None
        with self.db.transaction() as cursor:
            if cursor.postgres:
                cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            latest = cursor.execute(
                f"SELECT position, signature FROM {TABLE} ORDER BY position DESC LIMIT 1"
            ).fetchone()
            if latest is not None and int(latest["position"]) >= head[0]:
                return None
            checkpoint = key.sign(*head, previous=latest["signature"] if latest else "")
            access = cursor.execute(
                "SELECT entry_id, chain_hash FROM access_log WHERE chain_hash IS NOT NULL "
                "ORDER BY entry_id DESC LIMIT 1").fetchone()
            if access is not None:
                checkpoint = replace(checkpoint, access_head=(int(access["entry_id"]),
                                                              access["chain_hash"]))
            cursor.execute(
                f"INSERT INTO {TABLE} (position, chain_hash, signed_at, signature, "
                "previous_signature) VALUES (%s, %s, %s, %s, %s)",
                [checkpoint.position, checkpoint.chain_hash, checkpoint.signed_at,
                 checkpoint.signature, checkpoint.previous],
            )
            sink.append(checkpoint)
        return checkpoint
