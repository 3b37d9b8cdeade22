"""Auditing the record: the global log, its integrity chain, checkpoints,
replay and export.

How the pieces fit:

- `log.py` reads the global log, a window of positions at a time: the
  ledger entry and the stored event at each position, gaps included.
- `verify.py` walks it, recomputing each entry's chain hash
  (service/storage/chain.py), and says at which position and how the store
  stopped matching (changed, missing, inserted, reordered, truncated, ...).
- `checkpoints.py` signs the chain head (HMAC-SHA256 under
  TRACTION_CHECKPOINT_KEY), each checkpoint linked to the one before and
  copied to a file outside the database (TRACTION_CHECKPOINT_LOG), so that
  a log whose newest entries were deleted, or whose chain was recomputed
  after an edit, no longer verifies, whatever checkpoint rows go with them.
- `access_log.py` verifies the access log's own chain
  (service/storage/access_chain.py).
- `jobs.py` runs a verification beside an API request, never in it.
- `export.py` writes the log as JSON Lines with its chain values and
  checkpoints, and verifies such a file with no database.
- `replay.py` shows one programme as it was at a version or a record time.
- `cli.py` is `traction audit ...`; service/http/api/audit.py serves the log and
  the verification over HTTP.

Decisions, and why:

One global chain, not one per programme. The auditor's question is "is
anything missing from the whole record?", and the gap-free global position
is what answers it; per-programme chains cannot show a whole programme
deleted, nor the order of events across programmes. The cost is that a
chain link depends on the entry before it, whichever programme that was, so
the link must be computed where the global order is decided.

Concurrent writers. Which event comes before which is known only when the
transaction that records it holds the store's write lock (SQLite's single
writer; the library's exclusive table lock on PostgreSQL), and commits in
that order. So the recorders read the head of the ledger and compute the
new entries' positions and hashes under that lock, in the same transaction
as the events: no two writers can chain from the same head, and a failed
save leaves neither a position nor a hash behind. Nothing here recomputes
or repairs the chain after the fact.

Erasure. The chain hashes the bytes as stored (topic and encoded state),
never the decoded patient data. If a patient's data is later made
unreadable by deleting a per-patient key (crypto-shredding), the stored
bytes do not change, so the log still verifies; an export still carries
the bytes and still verifies, and simply cannot show the erased fields.
Deleting or rewriting stored rows to erase data would, by design, break the
chain at that position.

What the chain cannot do alone: an entry appended by someone who can write
to the database and compute SHA-256 is indistinguishable from a genuine
one, and so is a log whose tail was cut, or whose hashes were recomputed
after an edit. Signed checkpoints of the head close the last two gaps up to
the latest checkpoint; their copies in the checkpoint log close them
against someone who can also delete checkpoint rows. Without the key or the
log, verification says it cannot show the log whole (it fails closed).
"""
