"""Seeding the demo: the simulated history, posted as clinic systems would post it.

Each batch goes through the API's own validation (`EventPostSchema`) and then
`Programmes.record_events` with the `expected_version` a careful clinic system
sends, so the store ends up exactly as if the clinics had posted over HTTP.
Seeding is idempotent: event ids come from the seed, so running it again with
the same seed records nothing new (every batch is a replayed post), and a
larger `--programmes` only adds the programmes that were not there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from marshmallow import ValidationError
from tqdm import tqdm

from domain import errors
from domain.application import EventEnvelope, Programmes
from domain.programme import CLOCK_SKEW_ALLOWANCE
from service.bootstrap import Components
from service.demo.simulation import (
    DEMO_UNTIL,
    DemoClinic,
    SimulatedProgramme,
    demo_clinics,
    simulate,
)
from service.http.schemas.events import EventPostSchema
from service.storage.directory import ClinicExists, Directory

DEFAULT_CLINICS = 4
DEFAULT_PROGRAMMES = 60
DEFAULT_SEED = 1
#: Programmes posted at once. Each programme's batches stay in order; several
#: programmes in flight let the store commit their saves together (SQLite's
#: group commit, PostgreSQL's parallel connections), as many clinics would.
DEFAULT_CONCURRENCY = 8


class DemoError(Exception):
    """The demo cannot be seeded as asked."""


@dataclass(frozen=True)
class DemoToken:
    """A token issued for the demo, with what it is for."""

    role: str
    clinic_id: str | None
    purpose: str
    token: str


@dataclass
class SeedReport:
    """What a seeding run did."""

    clinics_registered: list[str] = field(default_factory=list)
    clinics_existing: list[str] = field(default_factory=list)
    programmes: int = 0
    batches: int = 0
    events_posted: int = 0  # envelopes sent
    events_recorded: int = 0  # new events stored, with the pauses the aggregate added
    batches_replayed: int = 0  # batches that had been recorded before (a re-run)
    refusals: list[str] = field(default_factory=list)
    tokens: list[DemoToken] = field(default_factory=list)
    seconds: float = 0.0


def default_until(now: datetime) -> datetime:
    """The demo's "now": the fixed DEMO_UNTIL, unless this machine's clock is before it."""
    return min(DEMO_UNTIL, now)


def store_is_empty(components: Components) -> bool:
    """True when nothing was ever recorded or registered: no events, clinics or tokens.

    (A deployment that has only issued its first admin token is not empty: the
    demo must never land in a store someone has started to use.)
    """
    if components.programmes.recorder.max_notification_id():
        return False
    _, tokens, clinics, _ = components.directory.load()
    return not tokens and not clinics


def seed_demo(
    components: Components,
    *,
    clinics: int = DEFAULT_CLINICS,
    programmes: int = DEFAULT_PROGRAMMES,
    seed: int = DEFAULT_SEED,
    until: datetime | None = None,
    progress: bool = False,
    issue_tokens: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SeedReport:
    """Register the demo clinics, post their simulated history, issue demo tokens.

    The store's tables must exist. `until` is the simulation's "now" (default
    DEMO_UNTIL); it may not be after the application's clock, which rule 4
    checks occurred_at against.
    """
    until = until or DEMO_UNTIL
    application = components.programmes
    if until > application.clock() + CLOCK_SKEW_ALLOWANCE:
        raise DemoError(
            f"the demo's end ({until.isoformat()}) is after this machine's clock; "
            "events may not be in the future, so pass an earlier --until"
        )
    started = time.perf_counter()
    report = SeedReport()
    clinic_list = demo_clinics(clinics)
    directory = components.directory
    _register(directory, clinic_list, report)
    bar = tqdm(total=len(clinic_list) * programmes, desc="seeding the demo",
               unit="programme", disable=None if progress else True, file=sys.stderr)
    with bar:
        for posted in _post_all(application, simulate(seed, clinic_list, programmes, until),
                                concurrency):
            report.programmes += 1
            report.batches += posted.batches
            report.events_posted += posted.events_posted
            report.events_recorded += posted.events_recorded
            report.batches_replayed += posted.batches_replayed
            report.refusals += posted.refusals
            bar.update()
            bar.set_postfix(events=report.events_posted, refresh=False)
    if issue_tokens:
        report.tokens = _issue_tokens(directory, clinic_list)
    report.seconds = time.perf_counter() - started
    return report


def _register(directory: Directory, clinic_list: list[DemoClinic], report: SeedReport) -> None:
    for clinic in clinic_list:
        try:
            directory.add_clinic(clinic.clinic_id, clinic.name)
        except ClinicExists:
            report.clinics_existing.append(clinic.clinic_id)
        else:
            report.clinics_registered.append(clinic.clinic_id)


@dataclass
class _Posted:
    """What posting one programme did."""

    batches: int = 0
    events_posted: int = 0
    events_recorded: int = 0
    batches_replayed: int = 0
    refusals: list[str] = field(default_factory=list)


def _post_all(application: Programmes, simulated: Iterable[SimulatedProgramme],
              concurrency: int) -> Iterable[_Posted]:
    """Post every programme, a few at a time; yield each result as it is done."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="demo-seed") as pool:
        running: set[Future[_Posted]] = set()
        for programme in simulated:
            if len(running) >= 2 * concurrency:  # bounded: never all programmes in memory
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
            running.add(pool.submit(_post, application, programme))
        for future in running:
            yield future.result()


def _post(application: Programmes, programme: SimulatedProgramme) -> _Posted:
    """Post one programme's batches in order, as its clinic system would."""
    posted = _Posted()
    clinic_id, programme_id = programme.clinic_id, programme.programme_id
    schema = EventPostSchema()
    version = 0
    for batch in programme.batches:
        posted.batches += 1
        posted.events_posted += len(batch)
        try:
            body = schema.load({"events": list(batch), "expected_version": version})
            envelopes = [EventEnvelope(**envelope) for envelope in body["events"]]
            receipt = application.record_events(clinic_id, programme_id, envelopes,
                                                body["expected_version"])
        except ValidationError as error:
            posted.refusals.append(f"{clinic_id}/{programme_id}: invalid: {error.messages}")
            break
        except (errors.DomainRuleViolation, errors.ApplicationError) as error:
            rule = getattr(error, "rule", type(error).__name__)
            posted.refusals.append(f"{clinic_id}/{programme_id}: {rule}: {error.detail}")
            break  # the rest of this programme's history would not fit either
        if receipt.replayed:
            posted.batches_replayed += 1
        else:
            posted.events_recorded += len(receipt.recorded)
        version = receipt.version
    return posted


def _issue_tokens(directory: Directory, clinic_list: list[DemoClinic]) -> list[DemoToken]:
    wanted: list[tuple[str, DemoClinic | None, str]] = [
        ("admin", None, "register clinics, issue and revoke tokens, network dashboard"),
        ("auditor", None, "read everything: global log, verification, access log"),
        ("viewer", None, "every clinic's programmes and dashboards (reads are logged)"),
    ]
    for clinic in clinic_list:
        wanted.append(("writer", clinic, f"post events for {clinic.name}"))
        wanted.append(("viewer", clinic, f"read {clinic.name}'s programmes and dashboard"))
    tokens = []
    for role, clinic, purpose in wanted:
        clinic_id = clinic.clinic_id if clinic else None
        label = f"demo {role}" + (f" {clinic_id}" if clinic_id else " (all clinics)")
        _, token = directory.issue_token(role, clinic_id, label)
        tokens.append(DemoToken(role, clinic_id, purpose, token))
    return tokens


def token_table(tokens: list[DemoToken]) -> str:
    """The demo tokens as a plain-text table: role, scope, what for, token."""
    rows = [("role", "scope", "for", "token")]
    rows += [(t.role, t.clinic_id or "all clinics", t.purpose, t.token) for t in tokens]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                     + "  " + row[3])
    return "\n".join(lines)
