"""Exporting the log as JSON Lines, and verifying an export without the database.

An export is one JSON object per line, each with a `kind`:

- ``header`` (first): the format, when, the scope (every clinic, or one);
- ``checkpoint``: the signed checkpoints stored when the export began;
- ``event``: one event at one position, with what the API shows (type,
  occurred_at, recorded_by, data, ...) and, under ``stored``, the exact
  bytes the chain covers (topic, and the state in base64), plus
  ``previous_hash`` and ``chain_hash``;
- ``link``: in a clinic's export, a position of another clinic: only the
  position, ``previous_hash`` and ``chain_hash``, none of its content;
- ``damaged``: a position where the store has lost half an entry;
- ``checkpoint`` again, after the events, when the export checkpointed its head;
- ``end`` (last): the head, the counts, and the verification done while exporting.

What verifying an export proves. For a whole-log export: every event's
stored bytes and ledger fields hash, link by link from the genesis, to the
chain values, so no event was changed, dropped, added or moved since it was
recorded (and none since export: edit one line and it fails); the readable
fields equal what the stored bytes decode to; the log reaches every
checkpoint with the same hash, and those checkpoints are authentic (without
TRACTION_CHECKPOINT_KEY the export cannot be shown whole, as for the store).

For a clinic's export the chain cannot be recomputed through the other
clinics' positions without their content, which it must not contain. It
proves that the clinic's events hash to their chain values given the
previous hash at each, that the positions run unbroken from 1 to the head,
each link taking up the hash of the one before, and that the chain reaches
the signed checkpoints. The other clinics' links are taken as stated: that
they are genuine is what verifying the whole log (on the database, or a full
export) establishes; compare their chain values with it to close the loop.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from domain.events import EVENT_TYPES
from service.audit.checkpoints import (
    NO_KEY,
    Checkpoint,
    CheckpointKeys,
    CheckpointLog,
    Checkpoints,
)
from service.audit.log import AuditRecorder, decode, entry_hash
from service.audit.verify import (
    Break,
    ChainWalk,
    ProgressBar,
    Report,
    check_checkpoints,
    usable_checkpoints,
)
from service.storage.chain import GENESIS
from service.storage.stored import event_type

FORMAT = "traction-ledger-export"
FORMAT_VERSION = 1
#: The readable fields every export's event lines have (0.1.0's included).
COMPARED_ALWAYS = ("event_id", "type", "occurred_at", "recorded_by", "data")


def _line(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")


def _canonical(value: Any) -> str:
    """One text for one JSON value, so that two copies compare exactly."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class ExportSummary:
    events: int
    links: int
    report: Report


def export_log(
    recorder: AuditRecorder,
    mapper: Mapper[UUID],
    checkpoints: Checkpoints,
    keys: CheckpointKeys,
    sink: CheckpointLog | None,
    out: IO[str],
    *,
    clinic_id: str | None = None,
    progress: ProgressBar | None = None,
    write_checkpoint: bool = True,
) -> ExportSummary:
    """Write the log (or one clinic's part of it) to `out`, verifying as it goes,
    and checkpoint the head when the chain holds."""
    stored = checkpoints.all()
    problem: Break | None = None
    logged: list[Checkpoint] = []
    try:
        logged = sink.read() if sink is not None else []
    except ValueError as error:
        problem = Break(0, "bad_checkpoint", str(error))
    if keys.configured and problem is None:
        problem = check_checkpoints(stored, logged, keys)
    valid = usable_checkpoints(stored, logged, keys)
    _line(out, {
        "kind": "header", "format": FORMAT, "format_version": FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "clinic_id": clinic_id, "genesis": GENESIS,
        # The schema version each type's readable fields are shown in, so that a
        # later release checks them against the stored bytes upcast no further.
        "event_versions": {name: t.version for name, t in EVENT_TYPES.items()},
    })
    for checkpoint in stored:
        _line(out, {"kind": "checkpoint", **checkpoint.as_dict()})
    walk = ChainWalk(recorder, checkpoints=valid, progress=progress)
    events = links = 0
    for walked in walk.entries():
        entry = walked.entry
        ledger, event = entry.ledger, entry.event
        if ledger is None or event is None:
            _line(out, {"kind": "damaged", "position": entry.position,
                        "detail": "the ledger entry or the stored event is missing"})
            continue
        if clinic_id is not None and ledger["clinic_id"] != clinic_id:
            links += 1
            _line(out, {"kind": "link", "position": entry.position,
                        "previous_hash": walked.previous_hash,
                        "chain_hash": ledger["chain_hash"]})
            continue
        events += 1
        recorded_at = walked.recorded_at or ledger["recorded_at"].astimezone(UTC)
        readable = decode(mapper, event) or {}
        _line(out, {
            "kind": "event",
            "position": entry.position,
            "previous_hash": walked.previous_hash,
            "chain_hash": ledger["chain_hash"],
            "clinic_id": ledger["clinic_id"],
            "programme_id": str(event["originator_id"]),
            "version": event["originator_version"],
            "event_id": str(ledger["event_id"]),
            "type": ledger["event_type"],
            "occurred_at": readable.get("occurred_at"),
            "recorded_at": recorded_at.isoformat(),
            "recorded_by": readable.get("recorded_by"),
            "data": readable.get("data"),
            "schema_version": readable.get("schema_version"),
            "newer_release": readable.get("newer_release"),
            "stored": {"topic": event["topic"],
                       "state": base64.b64encode(event["state"]).decode("ascii")},
        })
    report = Report(walk.checked, walk.head, walk.failure or problem)
    if (report.ok and keys.current is not None and sink is not None and write_checkpoint
            and report.head):
        checkpoint = checkpoints.extend(keys.current, report.head, sink)
        if checkpoint is not None:
            _line(out, {"kind": "checkpoint", **checkpoint.as_dict()})
    if not keys.configured:
        report.warnings.append(NO_KEY)
    _line(out, {
        "kind": "end",
        "head": {"position": walk.extent,
                 "chain_hash": report.head[1] if report.head else None} if walk.extent else None,
        "events": events,
        "links": links,
        "verified": {"ok": report.ok,
                     "failure": report.failure.as_dict() if report.failure else None},
    })
    return ExportSummary(events, links, report)


class _ExportCheck:
    """The offline verification of one export, line by line."""

    def __init__(self, keys: CheckpointKeys, mapper: Mapper[UUID],
                 use_checkpoints: bool) -> None:
        self.keys = keys
        self.use_checkpoints = use_checkpoints
        self.mapper = mapper
        self.clinic_id: str | None = None
        self.checkpoints: dict[int, Checkpoint] = {}
        self.position = 0
        self.previous = GENESIS
        self.events = 0
        self.links = 0
        self.undecodable = 0
        self.unsigned = 0
        self.ended: dict[str, Any] | None = None
        self.failure: Break | None = None
        #: The schema version each type's readable fields were shown in (the header's).
        self.versions: dict[str, int] = {}

    def fail(self, position: int, kind: str, detail: str) -> None:
        self.failure = Break(position, kind, detail)

    def line(self, number: int, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if number == 1:
            if kind != "header" or record.get("format") != FORMAT:
                raise ValueError("not a Traction Ledger export (no header line)")
            if record.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"export format version {record.get('format_version')} "
                                 f"is not {FORMAT_VERSION}")
            self.clinic_id = record.get("clinic_id")
            # Exports before 0.2.0 have no versions: every type was at version 1.
            self.versions = record.get("event_versions") or {}
            return
        if self.ended is not None:
            self.fail(self.position + 1, "inserted", f"line {number} follows the end line")
        elif kind == "checkpoint":
            self.checkpoint(record)
        elif kind in ("event", "link", "damaged"):
            self.entry(number, kind, record)
        elif kind == "end":
            self.ended = record
        else:
            self.fail(self.position + 1, "changed", f"line {number} has an unknown kind")

    def checkpoint(self, record: dict[str, Any]) -> None:
        try:
            checkpoint = Checkpoint.from_dict(record)
        except ValueError:
            self.fail(self.position + 1, "bad_checkpoint", "a checkpoint line is not one")
            return
        verdict = self.keys.check(checkpoint) if self.keys.configured else "no-key"
        if not self.use_checkpoints:
            verdict = "no-key"
        if verdict == "invalid":
            self.fail(checkpoint.position, "bad_checkpoint",
                      f"the checkpoint at position {checkpoint.position} fails its signature")
            return
        if verdict == "unknown-key":
            self.fail(checkpoint.position, "bad_checkpoint",
                      f"the checkpoint at position {checkpoint.position} is signed by a key "
                      "this host does not hold")
            return
        if verdict != "valid":
            self.unsigned += 1
        if checkpoint.position <= self.position:
            # The export's own checkpoint of its head comes after the events.
            if checkpoint.position != self.position or checkpoint.chain_hash != self.previous:
                self.fail(checkpoint.position, "rewritten",
                          f"the chain at position {checkpoint.position} differs from the "
                          "checkpoint")
            return
        self.checkpoints[checkpoint.position] = checkpoint

    def entry(self, number: int, kind: str, record: dict[str, Any]) -> None:
        position = record.get("position")
        expected = self.position + 1
        if not isinstance(position, int) or position != expected:
            if isinstance(position, int) and position > expected:
                self.fail(expected, "missing", f"line {number} jumps to position {position}")
            else:
                self.fail(expected, "reordered" if isinstance(position, int) else "changed",
                          f"line {number} holds position {position} where {expected} "
                          "belongs")
            return
        if kind == "damaged":
            self.fail(position, "missing", record.get("detail") or "a damaged position")
            return
        if record.get("previous_hash") != self.previous:
            self.fail(position, "changed",
                      f"line {number}: its previous hash is not the chain hash before it")
            return
        if kind == "link":
            if self.clinic_id is None:
                self.fail(position, "changed",
                          f"line {number}: a whole-log export has no bare links")
                return
            self.links += 1
        elif not self.event(number, record):
            return
        checkpoint = self.checkpoints.get(position)
        if checkpoint is not None and checkpoint.chain_hash != record["chain_hash"]:
            self.fail(position, "rewritten",
                      f"the chain at position {position} differs from the checkpoint signed "
                      f"at {checkpoint.signed_at}")
            return
        self.position = position
        self.previous = record["chain_hash"]

    def event(self, number: int, record: dict[str, Any]) -> bool:
        position = record["position"]
        try:
            stored = record["stored"]
            state = base64.b64decode(stored["state"], validate=True)
            programme_id = UUID(record["programme_id"])
            event = {"originator_id": programme_id,
                     "originator_version": int(record["version"]),
                     "topic": stored["topic"], "state": state}
            ledger = {"event_id": UUID(record["event_id"]), "clinic_id": record["clinic_id"]}
            recorded_at = datetime.fromisoformat(record["recorded_at"])
            computed = entry_hash(self.previous, position, ledger, event, recorded_at)
        except (KeyError, TypeError, ValueError) as error:
            self.fail(position, "changed", f"line {number} is malformed: {error}")
            return False
        if computed != record.get("chain_hash"):
            self.fail(position, "changed",
                      f"line {number}: the event's stored content no longer matches its "
                      "chain hash")
            return False
        if self.clinic_id is not None and record["clinic_id"] != self.clinic_id:
            self.fail(position, "changed",
                      f"line {number}: an event of {record['clinic_id']} in an export of "
                      f"{self.clinic_id}")
            return False
        if record.get("type") != event_type(stored["topic"]):
            self.fail(position, "changed", f"line {number}: its type is not the stored one")
            return False
        readable = decode(self.mapper, event, self.versions)
        if readable is None or readable["newer_release"]:
            self.undecodable += 1
        else:
            # Compared as canonical JSON, where 1 is not true and 30 is not 30.0;
            # the fields an older release's export does not have are not compared.
            changed = sorted(name for name in readable
                             if (name in record or name in COMPARED_ALWAYS)
                             and _canonical(record.get(name)) != _canonical(readable[name]))
            if changed:
                self.fail(position, "changed",
                          f"line {number}: {', '.join(changed)} differ from the stored event "
                          "the chain covers")
                return False
        self.events += 1
        return True

    def finish(self) -> Report:
        if self.failure is None:
            if self.ended is None:
                self.fail(self.position + 1, "truncated",
                          "the export has no end line: it was cut short")
            else:
                head = self.ended.get("head") or {}
                if (head.get("position") or 0) != self.position or (
                    self.position and head.get("chain_hash") != self.previous
                ) or self.ended.get("events") != self.events or (
                    self.ended.get("links") != self.links
                ):
                    self.fail(self.position + 1, "truncated",
                              "the end line does not match the lines before it")
        beyond = [c for c in self.checkpoints.values() if c.position > self.position]
        if self.failure is None and beyond:
            latest = max(beyond, key=lambda c: c.position)
            self.fail(self.position + 1, "truncated",
                      f"the export ends at position {self.position}, but a checkpoint covers "
                      f"position {latest.position}")
        report = Report(self.events, (self.position, self.previous) if self.position else None,
                        self.failure)
        report.checkpoints = {"checked": self.use_checkpoints,
                              "key_configured": self.keys.configured,
                              "unauthenticated": self.unsigned}
        if not self.use_checkpoints:
            report.warnings.append("checkpoints were not checked (--no-checkpoints)")
        elif not self.keys.configured:
            report.unverifiable = NO_KEY
            report.warnings.append(NO_KEY)
        if self.links:
            report.warnings.append(
                f"a clinic's export: {self.links} positions of other clinics are taken as "
                "stated (only their links are checked); verify the whole log to vouch for them"
            )
        if self.undecodable:
            report.warnings.append(f"{self.undecodable} events could not be decoded here, so "
                                   "their readable fields were not compared")
        return report


def verify_export(lines: Iterable[str], keys: CheckpointKeys, mapper: Mapper[UUID],
                  *, use_checkpoints: bool = True) -> Report:
    """Verify an export offline, streaming its lines (not ok without a key,
    unless `use_checkpoints` is False: the chain alone)."""
    check = _ExportCheck(keys, mapper, use_checkpoints)
    number = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            check.fail(check.position + 1, "changed", f"line {number} is not JSON")
            break
        check.line(number, record)
        if check.failure is not None:
            break
    if number == 0:
        raise ValueError("the export is empty")
    return check.finish()
