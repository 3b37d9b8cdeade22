"""Sealing what an older release recorded in the clear, and saying so in the chain.

Releases before patient keys stored personal fields as posted. `traction
migrate` seals them (`seal_recorded`): it rewrites those events' stored bytes
with their personal fields sealed, exactly as this release would have stored
them. The chain covers the stored bytes, so every chain hash from the first
rewritten event on changes; rather than leave verification failing, or
silently recompute the hashes (which is what tampering looks like), the
rewrite is itself recorded, in one transaction with it:

- the chain is verified first, and a broken one is not rewritten (that would
  launder the break);
- `chain_rewrites` gets a statement: when, which positions, how many events
  were sealed, the old and the new chain head, the checkpoints it supersedes,
  and why; signed with HMAC-SHA256 under TRACTION_CHECKPOINT_KEY when it is
  set (the same key as the checkpoints);
- the superseded checkpoints (signed over the old hashes) move into the
  statement, and, with a checkpoint key and a checkpoint log configured, a new
  checkpoint is signed at the new head, linked to the last one kept and
  appended to the checkpoint log like every other.

`traction audit verify` then checks the new chain end to end, shows each
statement, and fails if a statement's signature does not hold. What it
cannot do, by design, is recheck the old bytes: they held patients' words in
the clear and are gone. An auditor who kept an export from before can
check that its head matches the statement's old head (README, "Auditors").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain import personal
from domain.application import Programmes
from service.audit.checkpoints import Checkpoint, CheckpointKeys, CheckpointLog, Checkpoints
from service.audit.log import audit_recorder, entry_hash
from service.audit.rewrites import Rewrite, sign
from service.audit.verify import ChainWalk
from service.storage.database import Database
from service.storage.sealing import Keyring, KeySettings, is_sealed
from service.storage.stored import event_type

REASON = ("sealing personal fields recorded in the clear by an earlier release "
          "(per-programme data keys, GDPR Art. 32)")


class RewriteRefused(Exception):
    """The log cannot be rewritten as it is (the message says why)."""


def _sealed_state(programmes: Programmes, keyring: Keyring, entry: Any) -> bytes | None:
    """The event's stored bytes with its clear personal fields sealed; None if it
    has none in the clear."""
    event, ledger = entry.event, entry.ledger
    type_name = event_type(event["topic"])
    names = personal.PERSONAL_FIELDS.get(type_name, ())
    if not names:
        return None
    mapper = programmes.mapper
    state = mapper.transcoder.decode(bytes(event["state"]))
    data = state["data"]
    clear = [n for n in names if isinstance(data.get(n), str) and not is_sealed(data[n])]
    if not clear:
        return None
    programme_id = UUID(str(event["originator_id"]))
    if type_name == "ProgrammeStarted" and "patient_ref" in clear:
        keyring.register(programme_id, ledger["clinic_id"], data["patient_ref"])
    state["data"] = {key: (keyring.seal(programme_id, state["event_id"], key, value)
                           if key in clear else value) for key, value in data.items()}
    return bytes(mapper.transcoder.encode(state))


#: The key_settings row that says every event of the store is sealed (and since when).
SEALED = "clear_events_sealed"


def seal_recorded(programmes: Programmes, keyring: Keyring, database: Database,
                  checkpoints: Checkpoints, keys: CheckpointKeys,
                  sink: CheckpointLog | None) -> Rewrite | None:
    """Seal every personal field stored in the clear; the rewrite's statement, or
    None when there was nothing to seal. Run with the service stopped.

    Once a store has been walked and found (or made) all sealed, `key_settings`
    says so, and later migrations do not walk its log again: this release never
    stores a personal field in the clear."""
    settings = KeySettings(database)
    if SEALED in settings.read():
        return None
    rewrite = _seal_recorded(programmes, keyring, database, checkpoints, keys, sink)
    settings.add(SEALED, rewrite.rewritten_at if rewrite else datetime.now(UTC).isoformat())
    return rewrite


def _seal_recorded(programmes: Programmes, keyring: Keyring, database: Database,
                   checkpoints: Checkpoints, keys: CheckpointKeys,
                   sink: CheckpointLog | None) -> Rewrite | None:
    if programmes.mapper.cipher is not None or programmes.mapper.compressor is not None:
        raise RewriteRefused("the store is configured with the library's cipher or "
                             "compressor: sealing its events is not supported")
    stored = checkpoints.all()
    verdicts = [keys.check(c) for c in stored] if keys.configured else []
    if any(verdict != "valid" for verdict in verdicts):
        raise RewriteRefused("a checkpoint fails its signature (or was signed by a key this "
                             "host does not hold): run `traction audit verify` and settle "
                             "that first")
    valid = stored if keys.configured else []
    walk = ChainWalk(audit_recorder(programmes), checkpoints=valid)
    changed: dict[int, bytes] = {}
    walked: list[Any] = []
    old_head = None
    for item in walk.entries():
        if walk.failure is not None:
            raise RewriteRefused(
                f"the chain is broken at position {walk.failure.position} "
                f"({walk.failure.kind}: {walk.failure.detail}); it is not rewritten, so as "
                "not to hide the break. Restore a good backup first")
        sealed = _sealed_state(programmes, keyring, item.entry)
        if sealed is not None:
            changed[item.entry.position] = sealed
        if changed:
            walked.append(item)
        old_head = (item.entry.position, item.entry.chain_hash)
    if not changed or old_head is None:
        return None
    first = min(changed)
    previous = walked[0].previous_hash
    new_hashes: list[tuple[int, str]] = []
    for item in walked:
        entry = item.entry
        event = {**entry.event, "state": changed.get(entry.position, entry.event["state"])}
        previous = entry_hash(previous, entry.position, entry.ledger, event, item.recorded_at)
        new_hashes.append((entry.position, previous))
    superseded = [c for c in checkpoints.all() if c.position >= first]
    rewrite = Rewrite(
        rewritten_at=datetime.now(UTC).isoformat(), first_position=first,
        head_position=old_head[0], old_head_hash=old_head[1], new_head_hash=previous,
        events_sealed=len(changed),
        superseded_checkpoints=[c.as_dict() for c in superseded], reason=REASON,
        signature=None)
    rewrite = Rewrite(**{**rewrite.as_dict(), "signature": sign(keys.current, rewrite)})
    # A new checkpoint at the new head, linked to the last one the rewrite keeps and
    # copied to the checkpoint log, as every checkpoint is (none without both).
    kept = [c for c in stored if c.position < first]
    new_checkpoint: Checkpoint | None = (
        keys.current.sign(old_head[0], previous, previous=kept[-1].signature if kept else "")
        if keys.current is not None and sink is not None else None)
    events_table = programmes.recorder.events_table_name  # type: ignore[attr-defined]
    position_column = "notification_id" if database.store.is_postgres else "rowid"
    with database.transaction() as cursor:
        if database.store.is_postgres:
            # As a writer does: nobody records while the log is rewritten.
            cursor.execute(f"LOCK TABLE {events_table} IN EXCLUSIVE MODE")
        for position, state in changed.items():
            cursor.execute(f"UPDATE {events_table} SET state = %s WHERE {position_column} = %s",
                           (state, position))
        for position, chain_hash in new_hashes:
            cursor.execute("UPDATE event_ledger SET chain_hash = %s WHERE position = %s",
                           (chain_hash, position))
        cursor.execute("DELETE FROM chain_checkpoints WHERE position >= %s", (first,))
        if new_checkpoint is not None and sink is not None:
            cursor.execute("INSERT INTO chain_checkpoints (position, chain_hash, signed_at,"
                           " signature, previous_signature) VALUES (%s, %s, %s, %s, %s)",
                           (new_checkpoint.position, new_checkpoint.chain_hash,
                            new_checkpoint.signed_at, new_checkpoint.signature,
                            new_checkpoint.previous))
            sink.append(new_checkpoint)  # before the commit, as Checkpoints.extend does
        cursor.execute(
            "INSERT INTO chain_rewrites (rewritten_at, first_position, head_position,"
            " old_head_hash, new_head_hash, events_sealed, superseded_checkpoints, reason,"
            " signature) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (rewrite.rewritten_at, rewrite.first_position, rewrite.head_position,
             rewrite.old_head_hash, rewrite.new_head_hash, rewrite.events_sealed,
             json.dumps(rewrite.superseded_checkpoints, sort_keys=True), rewrite.reason,
             rewrite.signature))
    return rewrite
