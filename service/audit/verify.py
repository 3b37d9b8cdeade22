"""Verifying the integrity chain of the stored log, streaming.

The walk recomputes every entry's chain hash from the stored bytes, in
position order, a window at a time (memory stays flat however long the log),
and stops at the first position where the store no longer matches its chain.
It then says how it broke:

- ``changed``: an entry's stored content (event bytes, topic, ids, record
  time) or its stored chain hash no longer matches;
- ``missing``: a position is empty (a gap), a ledger entry has lost its
  event or an event its ledger entry, or an entry was deleted and the later
  ones renumbered to close the gap;
- ``inserted``: a position holds an entry that is not in the chain, with the
  genuine entries after it renumbered up by one;
- ``reordered``: entries were moved or swapped (the entry that belongs here
  is found at another position);
- ``truncated``: the log ends before the latest authenticated checkpoint;
- ``rewritten``: the chain is internally consistent but differs from a
  signed checkpoint (someone recomputed the hashes after an edit);
- ``bad_checkpoint``: a checkpoint (a row, or a line of the checkpoint log)
  fails its signature, is signed by a key this host does not hold, or does
  not follow the checkpoint before it;
- ``missing_checkpoint``: a checkpoint row was deleted (the next one links to
  it, or the checkpoint log still holds it).

A log with no break is still not reported ``ok`` when the checkpoints could
not be checked (no key, no checkpoint log): ``unverifiable`` says why.

Telling these apart looks at most LOOKAHEAD positions past the break; moves
further apart than that are reported as ``changed`` (at the right position).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from service.audit.access_log import AccessLogCheck, verify_access_log
from service.audit.checkpoints import (
    CHAIN_ONLY,
    NO_KEY,
    NO_LOG,
    PREVIOUS_KEYS_VARIABLE,
    Checkpoint,
    CheckpointKeys,
    CheckpointLog,
    CheckpointLogUnwritable,
    Checkpoints,
)
from service.audit.log import (
    WINDOW,
    AuditRecorder,
    LogEntry,
    hashed_recorded_at,
    read_log,
)
from service.audit.rewrites import Rewrite, check, recorded_rewrites
from service.storage.chain import GENESIS
from service.storage.database import Database
from service.storage.stored import event_type

#: How far past a break the walk looks for the entry that belongs there.
LOOKAHEAD = 5000


class ProgressBar(Protocol):
    """What the walk needs of a progress bar (tqdm has it)."""

    total: Any

    def update(self, n: float = 1) -> Any: ...

    def refresh(self) -> Any: ...


@dataclass(frozen=True)
class Break:
    """Where and how the store stopped matching its chain."""

    position: int
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}


@dataclass
class Report:
    """The outcome of a verification."""

    events_checked: int = 0
    head: tuple[int, str] | None = None
    failure: Break | None = None
    checkpoints: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Why the log cannot be shown whole although nothing is found broken
    #: (no key, no checkpoint log); None when it can.
    unverifiable: str | None = None
    #: The access log's own chain, when it was checked too.
    access_log: AccessLogCheck | None = None
    #: Recorded rewrites of the stored bytes (sealing an older release's clear fields).
    rewrites: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.failure is None and self.unverifiable is None
                and (self.access_log is None or self.access_log.failure is None))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "head": {"position": self.head[0], "chain_hash": self.head[1]}
            if self.head else None,
            "failure": self.failure.as_dict() if self.failure else None,
            "unverifiable": self.unverifiable,
            "access_log": self.access_log.as_dict() if self.access_log else None,
            "checkpoints": self.checkpoints,
            "warnings": self.warnings,
            "rewrites": self.rewrites,
        }


@dataclass(frozen=True, slots=True)
class WalkedEntry:
    """An entry as the walk saw it: what the store holds, the stored hash before
    it, and the record time as its hash covers it (None once the walk broke)."""

    entry: LogEntry
    previous_hash: str | None
    recorded_at: datetime | None


def _describe(entry: LogEntry) -> str:
    side = entry.ledger or {}
    event = entry.event or {}
    programme = event.get("originator_id", side.get("programme_id"))
    version = event.get("originator_version", side.get("version"))
    return f"version {version} of programme {programme}"


class ChainWalk:
    """Walks the stored log in position order, checking each entry as it goes.

    Iterate `entries()` to walk (export does, to write what it reads); once
    the walk has broken it keeps yielding what is stored but stops checking.
    """

    def __init__(
        self,
        recorder: AuditRecorder,
        *,
        checkpoints: Sequence[Checkpoint] = (),
        start_after: Checkpoint | None = None,
        progress: ProgressBar | None = None,
        window: int = WINDOW,
    ) -> None:
        self.recorder = recorder
        self.checkpoints = {c.position: c for c in checkpoints}
        self.start_after = start_after
        self.progress = progress
        self.window = window
        self.failure: Break | None = None
        self.checked = 0
        self.head: tuple[int, str] | None = None
        self.extent = 0
        self._last_recorded_at: datetime | None = None

    def entries(self) -> Iterator[WalkedEntry]:
        previous = GENESIS
        first = 1
        self.extent = self.recorder.chain_extent()
        if self.start_after is not None:
            first = self._start_from(self.start_after)
            previous = self.start_after.chain_hash
            self.head = (self.start_after.position, self.start_after.chain_hash)
        if self.progress is not None:
            self.progress.total = max(self.extent - first + 1, 0)
            self.progress.refresh()
        update = self.progress.update if self.progress is not None else None
        for entry in read_log(self.recorder, first, self.extent, window=self.window,
                              progress=update):
            recorded_at = None
            if self.failure is None:
                recorded_at = self._check(entry, previous)
            yield WalkedEntry(entry, previous, recorded_at)
            previous = entry.chain_hash  # type: ignore[assignment]
        if self.failure is None:
            self._check_tail()

    def run(self) -> Report:
        """Walk to the end (or the first break) and report."""
        for _ in self.entries():
            if self.failure is not None:
                break
        return Report(self.checked, self.head, self.failure)

    # ---- the checks ---------------------------------------------------

    def _fail(self, position: int, kind: str, detail: str) -> None:
        self.failure = Break(position, kind, detail)

    def _start_from(self, checkpoint: Checkpoint) -> int:
        rows = self.recorder.ledger_window(checkpoint.position, checkpoint.position)
        if not rows:
            if self.extent < checkpoint.position:
                self._truncated(self.extent, checkpoint)
            else:
                self._fail(checkpoint.position, "missing",
                           f"the checkpointed entry at position {checkpoint.position} is gone")
        elif rows[0]["chain_hash"] != checkpoint.chain_hash:
            self._rewritten(checkpoint)
        return checkpoint.position + 1

    def _check(self, entry: LogEntry, previous: str) -> datetime | None:
        position, ledger, event = entry.position, entry.ledger, entry.event
        if ledger is None and event is None:
            self._fail(position, "missing",
                       f"position {position} is empty: no ledger entry and no stored event "
                       "(a gap in the log)")
            return None
        if ledger is None:
            self._fail(position, "missing",
                       f"the event stored at position {position} ({_describe(entry)}) "
                       "has no ledger entry")
            return None
        if event is None:
            self._fail(position, "missing",
                       f"the ledger records {_describe(entry)} at position {position}, "
                       "but its stored event is gone")
            return None
        if (event["originator_id"], event["originator_version"]) != (
            ledger["programme_id"], ledger["version"]
        ):
            self._misplaced_event(entry)
            return None
        if ledger["event_type"] != event_type(event["topic"]):
            self._fail(position, "changed",
                       f"the ledger calls the event at position {position} a "
                       f"{ledger['event_type']}, but the stored event is a "
                       f"{event_type(event['topic'])}")
            return None
        recorded_at = hashed_recorded_at(previous, position, entry, ledger["chain_hash"])
        if recorded_at is None:
            self.failure = self._classify(entry, previous)
            return None
        checkpoint = self.checkpoints.get(position)
        if checkpoint is not None and checkpoint.chain_hash != ledger["chain_hash"]:
            self._rewritten(checkpoint)
            return None
        self.checked += 1
        self.head = (position, ledger["chain_hash"])
        self._last_recorded_at = ledger["recorded_at"]
        return recorded_at

    def _misplaced_event(self, entry: LogEntry) -> None:
        assert entry.ledger is not None and entry.event is not None
        position = entry.position
        belongs_at = self.recorder.ledger_position_of(
            entry.event["originator_id"], entry.event["originator_version"]
        )
        if belongs_at is not None and belongs_at != position:
            self._fail(position, "reordered",
                       f"the event stored at position {position} ({_describe(entry)}) is "
                       f"the one the ledger records at position {belongs_at}: events were "
                       "moved or swapped")
        else:
            self._fail(position, "changed",
                       f"the event stored at position {position} ({_describe(entry)}) is "
                       f"not the one the ledger records there (version "
                       f"{entry.ledger['version']} of programme {entry.ledger['programme_id']})")

    def _classify(self, entry: LogEntry, previous: str) -> Break:
        """How an entry whose hash does not match came to be where it is."""
        assert entry.ledger is not None
        position = entry.position
        ahead = list(read_log(self.recorder, position + 1,
                              min(position + LOOKAHEAD, self.extent), window=self.window))
        for offset, later in enumerate(ahead):
            if hashed_recorded_at(previous, position, later, later.chain_hash) is None:
                continue
            # The entry at `there` belongs at `position`. Does ours belong there?
            there = later.position
            before_there = later.chain_hash if offset == 0 else ahead[offset - 1].chain_hash
            if before_there and hashed_recorded_at(before_there, there, entry,
                                                   entry.chain_hash):
                return Break(position, "reordered",
                             f"the entries at positions {position} and {there} were swapped")
            if offset == 0:
                return Break(position, "inserted",
                             f"position {position} holds an entry that is not in the chain "
                             f"({_describe(entry)}); the entries after it were renumbered "
                             "up by one")
            return Break(position, "reordered",
                         f"the entry that belongs at position {position} is at position "
                         f"{there}")
        if ahead and hashed_recorded_at(entry.chain_hash or "", position + 2, ahead[0],
                                        ahead[0].chain_hash):
            return Break(position, "missing",
                         f"the entry at position {position} was deleted and the entries "
                         "after it renumbered down by one")
        if self._last_recorded_at and entry.ledger["recorded_at"] < self._last_recorded_at:
            return Break(position, "reordered",
                         f"the record time at position {position} is earlier than the one "
                         "before it: entries were moved")
        return Break(position, "changed",
                     f"the entry at position {position} ({_describe(entry)}) no longer "
                     "matches its chain hash: its stored event or its ledger entry was "
                     "changed")

    def _rewritten(self, checkpoint: Checkpoint) -> None:
        self._fail(checkpoint.position, "rewritten",
                   f"the chain at position {checkpoint.position} differs from the checkpoint "
                   f"signed at {checkpoint.signed_at}: entries at or before it were changed "
                   "and the chain recomputed")

    def _truncated(self, end: int, checkpoint: Checkpoint) -> None:
        self._fail(end + 1, "truncated",
                   f"the log ends at position {end}, but the checkpoint signed at "
                   f"{checkpoint.signed_at} covers position {checkpoint.position}: "
                   f"{checkpoint.position - end} events are missing from the end")

    def _check_tail(self) -> None:
        if not self.checkpoints:
            return
        latest = self.checkpoints[max(self.checkpoints)]
        if latest.position > self.extent:
            self._truncated(self.extent, latest)


def check_checkpoints(stored: Sequence[Checkpoint], logged: Sequence[Checkpoint],
                      keys: CheckpointKeys) -> Break | None:
    """The first thing wrong with the checkpoints: a row or a line of the file
    that does not authenticate, a broken link between rows, or a line of the
    file whose row is gone from the table."""
    for source, checkpoints in (("row", stored), ("line of the checkpoint log", logged)):
        for checkpoint in checkpoints:
            verdict = keys.check(checkpoint)
            if verdict == "invalid":
                return Break(checkpoint.position, "bad_checkpoint",
                             f"the checkpoint {source} at position {checkpoint.position} "
                             f"(signed at {checkpoint.signed_at}) fails its signature: it was "
                             "forged or altered")
            if verdict == "unknown-key":
                key_id = checkpoint.signature.split(":")[1]
                return Break(checkpoint.position, "bad_checkpoint",
                             f"the checkpoint {source} at position {checkpoint.position} is "
                             f"signed by a key this host does not hold (key id {key_id}): "
                             f"forged, or signed by a key left out of "
                             f"{PREVIOUS_KEYS_VARIABLE} on rotation")
    signatures = {c.signature for c in stored}
    before: Checkpoint | None = None
    for checkpoint in stored:
        if checkpoint.linked and checkpoint.previous != (before.signature if before else ""):
            if checkpoint.previous and checkpoint.previous not in signatures:
                return Break(checkpoint.position, "missing_checkpoint",
                             f"the checkpoint at position {checkpoint.position} follows one "
                             "that is no longer in the database: checkpoint rows were deleted")
            return Break(checkpoint.position, "bad_checkpoint",
                         f"the checkpoint at position {checkpoint.position} does not follow "
                         "the one before it: checkpoint rows were moved or replaced")
        if not checkpoint.linked and before is not None and before.linked:
            return Break(checkpoint.position, "bad_checkpoint",
                         f"the checkpoint at position {checkpoint.position} is of an earlier "
                         "release's form but follows linked ones: it was put there by hand")
        before = checkpoint
    by_position = {c.position: c for c in stored}
    for line in logged:
        row = by_position.get(line.position)
        if row is None:
            return Break(line.position, "missing_checkpoint",
                         f"the checkpoint at position {line.position} (signed at "
                         f"{line.signed_at}) is in the checkpoint log but not in the database: "
                         "checkpoint rows were deleted")
        if row.signature != line.signature:
            return Break(line.position, "bad_checkpoint",
                         f"the checkpoint at position {line.position} in the database differs "
                         "from the one in the checkpoint log: the row was replaced")
    return None


def _explain_rewrites(report: Report, found: Sequence[Rewrite], keys: CheckpointKeys) -> None:
    """Each recorded rewrite, said plainly; one whose signature fails breaks the report."""
    for rewrite in found:
        verdict = check(keys, rewrite)
        report.rewrites.append({**rewrite.as_dict(), "signature_check": verdict})
        report.warnings.append(f"the log was rewritten: {rewrite.describe()} ({verdict} "
                               "statement)")
        if verdict in ("invalid", "unknown-key") and report.failure is None:
            report.failure = Break(rewrite.first_position, "bad_checkpoint",
                                   f"the statement of the rewrite on {rewrite.rewritten_at} "
                                   "fails its signature, or is signed by a key this host does not "
                                   "hold: it was forged or altered")


def verify_store(
    recorder: AuditRecorder,
    checkpoints: Checkpoints,
    keys: CheckpointKeys,
    sink: CheckpointLog | None,
    *,
    progress: ProgressBar | None = None,
    incremental: bool = False,
    write_checkpoint: bool = True,
    use_checkpoints: bool = True,
    access_log: Database | None = None,
) -> Report:
    """Verify the whole log (or, `incremental`, what follows the latest
    checkpoint) and, when it holds, checkpoint its head.

    Fails closed: without a key, or without the checkpoint log, the report is
    not ok (`unverifiable` says why) even when the chain holds, unless the
    caller asked for the chain alone (`use_checkpoints=False`). Given the
    database of `access_log`, the access log's own chain is checked too."""
    stored = checkpoints.all() if use_checkpoints else []
    logged: list[Checkpoint] = []
    unverifiable: str | None = None
    problem: Break | None = None
    if use_checkpoints:
        if not keys.configured:
            unverifiable = NO_KEY
        elif sink is None:
            unverifiable = NO_LOG
        else:
            try:
                logged = sink.read()
            except ValueError as error:
                problem = Break(0, "bad_checkpoint", str(error))
        if keys.configured and problem is None:
            problem = check_checkpoints(stored, logged, keys)
    usable = usable_checkpoints(stored, logged, keys)
    walk = ChainWalk(recorder, checkpoints=usable, progress=progress,
                     start_after=usable[-1] if incremental and usable else None)
    report = walk.run()
    if report.failure is None:
        report.failure = problem
    report.unverifiable = unverifiable
    if access_log is not None:
        report.access_log = verify_access_log(
            access_log, [c.access_head for c in logged if c.access_head is not None])
    report.checkpoints = {
        "checked": use_checkpoints,
        "key_configured": keys.current is not None,
        "log_configured": sink is not None,
        "stored": len(stored),
        "logged": len(logged),
        "authenticated": len(usable),
        "latest_authenticated": usable[-1].position if usable else None,
        "written": None,
        "write_error": None,
    }
    if not use_checkpoints:
        report.warnings.append(CHAIN_ONLY)
    elif unverifiable:
        report.warnings.append(unverifiable)
    _explain_rewrites(report, recorded_rewrites(checkpoints.db), keys)
    # Only over checkpoints just checked: signing a head without them could vouch
    # for a log cut short together with the checkpoints that covered it.
    if (report.ok and use_checkpoints and keys.current is not None and sink is not None
            and write_checkpoint and report.head is not None):
        try:
            written = checkpoints.extend(keys.current, report.head, sink)
        except CheckpointLogUnwritable as error:
            # The verdict stands; only the new checkpoint is missing, and it says so.
            report.checkpoints["write_error"] = f"{error}: no checkpoint was written"
            report.warnings.append(report.checkpoints["write_error"])
            return report
        if written is not None:
            report.checkpoints["written"] = written.as_dict()
    return report


def usable_checkpoints(stored: Sequence[Checkpoint], logged: Sequence[Checkpoint],
            keys: CheckpointKeys) -> list[Checkpoint]:
    """The checkpoints the log must reach: every authentic one, from the table
    or the file, in position order."""
    by_position = {c.position: c for c in [*logged, *stored] if keys.check(c) == "valid"}
    return [by_position[p] for p in sorted(by_position)]
