"""P3 / P8: projection rebuild from scratch vs reading and decoding the log alone.

    python -m bench.rebuild                          # 1,000,000 events on SQLite
    python -m bench.rebuild --events 100000
    python -m bench.rebuild --store postgres --events 100000

1. A store with N events (default 1,000,000) is generated once, deterministically
   from --seed, through domain.application.Programmes' aggregate and batched
   `save`s (1,000 events per save, no HTTP), and reused by later runs (the
   store named rebuild-N-SEED, see bench/common.py).
   The history is realistic: 20 clinics, programmes starting at a constant
   rate (so about 1,000 are active at once whatever N is), ~100 events each,
   sessions, missed sessions, pain reports (some posted days late by home
   devices), plan changes, pauses, adverse events, corrections, discharges,
   interleaved in record order. (Not bench/dataset.py's store: that one
   writes each programme's history in one run, which would flatter the
   rebuild's bounded cache of programme states.)
2. Baseline (in a fresh process): read the notification log in pages and
   decode every event with the application's mapper, nothing else (P3's
   baseline). Then a stricter one: the log read and decoded the way the
   rebuild does it (the recorder's plain `log_rows`, and
   projections/decoding.py, which parses a page as one JSON array and takes
   out the five attributes the metrics read); its ratio is printed too, so
   the gain from reading and decoding less is not mistaken for cheap
   projection work.
3. Rebuild (in a fresh process): `projections.rebuild.rebuild`, from
   position 0 until the new version is live (the old version's tables are
   dropped after that, off the critical path: timed separately).

Both are timed in wall time (the bar) and in CPU time: on a shared machine
the CPU-time ratio says what the wall-time ratio would be on a quiet one.

Prints a table, and writes it as JSON to bench/results/. Bars (P3): rebuild
>= 0.5 x the baseline's events/s, and >= 20,000 events/s on SQLite.
P8: compare `rebuild_peak_rss_mb` at 100,000 and 1,000,000 events (<= 1.2x).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bench import common
from projections.rebuild import rebuild
from service.bootstrap import (
    initialise_store,
    make_development_store,
    open_components,
    open_programmes,
)
from service.config import Settings

CLINICS = 20
STARTS_PER_WEEK = 100
SAVE_BATCH = 1_000
PAGE = 10_000
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
EPOCH_START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
PER_WEEK = {"mechanical_table": (2, 3), "decompression_mat": (7, 21), "inversion": (5, 7),
            "stretching_exercises": (5, 14)}
SETTINGS = ("in_office", "at_home", "hybrid")
CONDITIONS = ("low_back_pain", "sciatica", "disc_herniation", "spinal_stenosis", "other")
OUTCOMES = ("goals_met", "improved", "improved", "no_change", "worsened", "referred")


# ---- generating the history --------------------------------------------


@dataclass(order=True)
class Scripted:
    recorded: datetime
    seq: int
    type: str = field(compare=False)
    occurred: datetime = field(compare=False)
    data: dict[str, Any] = field(compare=False)
    event_id: uuid.UUID = field(compare=False)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def programme_script(rng: random.Random, start: datetime, clinic_tz: timezone) -> list[Scripted]:
    """One programme's events, in the order its clinic's systems would post them."""
    start = start.astimezone(clinic_tz)
    modality = rng.choice(list(PER_WEEK))
    low, high = PER_WEEK[modality]
    per_week = rng.randint(low, high)
    minutes = rng.choice((15, 20, 30, 45))
    setting = rng.choice(SETTINGS)
    plan: dict[str, Any] = {"modality": modality, "sessions_per_week": per_week,
                            "minutes_per_session": minutes}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = rng.choice((20, 25, 30, 35))
    baseline = rng.randint(4, 9)
    weeks = rng.randint(6, 10)
    adherence = rng.uniform(0.55, 1.0)
    budget = rng.randint(80, 120)  # events, roughly
    script: list[Scripted] = []
    seq = 0

    def add(type_: str, occurred: datetime, data: dict[str, Any], delay: timedelta = timedelta(0)
            ) -> Scripted:
        nonlocal seq
        seq += 1
        item = Scripted(occurred + delay + timedelta(minutes=rng.randint(0, 30)), seq, type_,
                        occurred, data, _uuid(rng))
        script.append(item)
        return item

    add("ProgrammeStarted", start, {
        "patient_ref": f"pt-{rng.getrandbits(40):010x}", "condition": rng.choice(CONDITIONS),
        "setting": setting, "plan": plan,
        "baseline": {"pain_nrs": baseline, "odi_percent": rng.randint(20, 60)},
    })
    pause_from = rng.randint(10, 30) if rng.random() < 0.12 else None
    pause_days = rng.randint(3, 7)
    severe = pause_from is not None and rng.random() < 0.2
    adjust_day = rng.randint(14, 28) if rng.random() < 0.3 else None
    correctable: list[Scripted] = []
    day = 0
    while day < weeks * 7 and len(script) < budget:
        day += 1
        moment = start + timedelta(days=day, hours=rng.randint(0, 9), minutes=rng.randint(0, 59))
        if pause_from is not None and day == pause_from:
            if severe:
                add("AdverseEventReported", moment, {"severity": "severe",
                                                     "description": "sharp leg pain"})
            else:
                add("ProgrammePaused", moment, {"reason": "travel"})
            continue
        if pause_from is not None and day == pause_from + pause_days:
            add("ProgrammeResumed", moment, {})
        if pause_from is not None and pause_from <= day < pause_from + pause_days:
            continue
        if adjust_day == day:
            per_week = max(1, min(35, per_week + rng.choice((-1, 1, 2))))
            if per_week != plan["sessions_per_week"]:
                add("PlanAdjusted", moment, {"sessions_per_week": per_week,
                                             "reason": "progressing"})
        expected = per_week / 7
        count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        for n in range(count):
            at = moment + timedelta(hours=3 * n)
            if rng.random() < adherence:
                data = {"modality": modality, "duration_minutes": minutes + rng.randint(-5, 5),
                        "supervised": setting == "in_office"}
                if modality == "mechanical_table":
                    data["force_percent_body_weight"] = plan["force_percent_body_weight"]
                if rng.random() < 0.3:
                    data["discomfort_nrs"] = rng.randint(0, 6)
                correctable.append(add("SessionCompleted", at, data))
            elif rng.random() < 0.4:
                add("SessionMissed", at, {"reason": rng.choice(("pain", "schedule", "illness"))})
        if day % 3 == 0:
            progress = day / (weeks * 7)
            pain = max(0, min(10, round(baseline * (1 - 0.6 * progress) + rng.gauss(0, 1))))
            late = setting != "in_office" and rng.random() < 0.1
            delay = timedelta(hours=rng.randint(4, 96)) if late else timedelta(0)
            correctable.append(add("PainReported", moment + timedelta(hours=1), {
                "pain_nrs": pain, "odi_percent": rng.randint(10, 60),
                "context": rng.choice(("before_session", "after_session", "follow_up")),
            }, delay))
        if rng.random() < 0.02:
            add("AdverseEventReported", moment, {
                "severity": rng.choice(("mild", "mild", "moderate")),
                "description": "soreness after session"})
    for target in rng.sample(correctable, k=min(len(correctable), max(0, int(len(correctable)
                                                                         * 0.02)))):
        data = dict(target.data)
        if "pain_nrs" in data:
            data["pain_nrs"] = max(0, min(10, data["pain_nrs"] + rng.choice((-1, 1))))
        else:
            data["duration_minutes"] = max(1, data["duration_minutes"] + rng.choice((-5, 5)))
        add("EntryCorrected", target.recorded + timedelta(days=1),
            {"corrects": str(target.event_id), "data": data, "reason": "typo"})
    last = max(s.occurred for s in script)
    if rng.random() < 0.9:
        add("ProgrammeDischarged", last + timedelta(days=1), {"outcome": rng.choice(OUTCOMES)})
    script.sort()
    return script


def generate(url: str, events: int, seed: int) -> int:
    """Record about `events` events through the application; returns how many were stored."""
    import heapq

    from domain import errors
    from domain.application import EventEnvelope
    from domain.ledger import LedgerEntry
    from domain.programme import Programme

    settings = Settings(database_url=url)
    initialise_store(settings)
    make_development_store(settings)  # made-up patients
    app = open_programmes(settings)
    rng = random.Random(seed)
    clinic_tz = [timezone(timedelta(hours=rng.choice((0, 0, 1, 2, -5)))) for _ in range(CLINICS)]
    heap: list[tuple[datetime, int, int]] = []
    scripts: dict[int, list[Scripted]] = {}
    aggregates: dict[int, Any] = {}
    clinics: dict[int, str] = {}
    next_start = EPOCH_START
    started = 0
    stored = 0
    refused = 0
    pending: list[Any] = []
    ledger: list[Any] = []
    step = timedelta(days=7) / STARTS_PER_WEEK
    began = time.monotonic()

    def start_programme() -> None:
        nonlocal next_start, started
        clinic = rng.randrange(CLINICS)
        script = programme_script(rng, next_start + timedelta(minutes=rng.randint(0, 60)),
                                  clinic_tz[clinic])
        scripts[started] = script
        clinics[started] = f"clinic-{clinic + 1:02d}"
        heapq.heappush(heap, (script[0].recorded, started, 0))
        started += 1
        next_start += step

    while stored + len(pending) < events:
        while not heap or heap[0][0] >= next_start:
            start_programme()
        _recorded, index, offset = heapq.heappop(heap)
        item = scripts[index][offset]
        if offset + 1 < len(scripts[index]):
            heapq.heappush(heap, (scripts[index][offset + 1].recorded, index, offset + 1))
        else:
            del scripts[index]
        envelope = EventEnvelope(item.event_id, item.type, item.occurred, "bench.generator",
                                 item.data)
        programme_id = uuid.UUID(int=(seed << 64) ^ index, version=4)
        try:
            if item.type == "ProgrammeStarted":
                programme = Programme.start(
                    programme_id=programme_id, clinic_id=clinics[index],
                    event_id=item.event_id, occurred_at=item.occurred,
                    recorded_by=envelope.recorded_by, data=item.data, now=FAR_FUTURE)
                aggregates[index] = programme
            else:
                programme = aggregates[index]
                getattr(programme, Programme.COMMANDS[item.type])(
                    item.event_id, item.occurred, envelope.recorded_by, item.data, FAR_FUTURE)
        except (errors.DomainRuleViolation, KeyError):
            refused += 1  # e.g. a late report that would land in a pause: not posted
            continue
        digest = envelope.content_digest(programme_id)
        for event in programme.collect_events():
            pending.append(event)
            ledger.append(LedgerEntry(event.event_id, clinics[index], type(event).__name__,
                                      digest if event.event_id == item.event_id else None))
        if index not in scripts:
            aggregates.pop(index, None)
        if len(pending) >= SAVE_BATCH:
            app.save(*pending, ledger=ledger)
            stored += len(pending)
            pending, ledger = [], []
            if stored % 100_000 < SAVE_BATCH:
                rate = stored / (time.monotonic() - began)
                print(f"  generated {stored:,} events ({rate:,.0f}/s)", file=sys.stderr)
    if pending:
        app.save(*pending, ledger=ledger)
        stored += len(pending)
    app.close()
    print(f"  generated {stored:,} events, {started:,} programmes ({refused} refused) in "
          f"{time.monotonic() - began:.0f} s", file=sys.stderr)
    return stored


# ---- the store ----------------------------------------------------------


def stored_events(url: str) -> int:

    try:
        app = open_programmes(Settings(database_url=url))
        try:
            return app.recorder.max_notification_id() or 0
        finally:
            app.close()
    except Exception:  # no such store, or not one of ours
        return 0


def ensure_store(kind: str, events: int, seed: int) -> tuple[str, int]:
    """The generated store for (events, seed), generated unless it exists."""
    name = f"rebuild-{events}-{seed}"
    if common.store_exists(kind, name):
        url = common.store_url(kind, name)
        count = stored_events(url)
        if count >= events:
            print(f"reusing the store with {count:,} events: {url}", file=sys.stderr)
            return url, count
    url = common.fresh_store(kind, name)
    print(f"generating {events:,} events (seed {seed}) into {url}", file=sys.stderr)
    count = generate(url, events, seed)
    if kind == "sqlite":
        common.checkpoint_sqlite(name)
    return url, count


# ---- the two measured phases (each in its own process) --------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Reads and decodes the page after a position: (its last position, its size), None at the end.
PageReader = Callable[[Any, int], tuple[int, int] | None]


def read_pages_library(app: Any, after: int) -> tuple[int, int] | None:
    """P3's baseline page: the library's notifications, each decoded by its mapper."""
    page = app.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False)
    for notification in page:
        app.mapper.to_domain_event(notification)
    return (page[-1].id, len(page)) if page else None


def read_pages_lean(app: Any, after: int) -> tuple[int, int] | None:
    """The stricter baseline's page: read and decoded as the rebuild does (the
    recorder's plain `log_rows`, projections/decoding.py)."""
    from projections.decoding import decode_rows

    rows = app.recorder.log_rows(after, PAGE)
    decode_rows(app.mapper, rows)
    return (rows[-1][0], len(rows)) if rows else None


def phase_baseline(url: str, read_page: PageReader) -> dict[str, Any]:
    """Read and decode the whole log a page at a time, nothing else."""

    app = open_programmes(Settings(database_url=url))
    position = count = 0
    began = time.perf_counter()
    cpu_began = time.process_time()
    while (page := read_page(app, position)) is not None:
        position, size = page
        count += size
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    app.close()
    return {"events": count, "seconds": seconds, "cpu_seconds": cpu,
            "peak_rss_mb": peak_rss_mb()}


def phase_rebuild(url: str, batch_size: int) -> dict[str, Any]:

    began = time.perf_counter()
    cpu_began = time.process_time()
    components = open_components(Settings(database_url=url))
    try:
        report = rebuild(components.programmes, components.read_models, components.store,
                         batch_size=batch_size, progress=True, grace=0)
    finally:
        components.close()
    # From the start to the new version live (report.seconds); the old
    # version's tables are dropped after that, off the critical path.
    return {"events": report.events, "seconds": report.seconds,
            "seconds_with_cleanup": time.perf_counter() - began,
            "cpu_seconds": time.process_time() - cpu_began, "peak_rss_mb": peak_rss_mb(),
            "version": report.new_version}


def run_phase(phase: str, url: str, batch_size: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.rebuild", "--phase", phase, "--store-url", url,
         "--batch-size", str(batch_size)],
        cwd=common.ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=common.STORE_KINDS, default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=10_000,
                        help="events per rebuild transaction")
    parser.add_argument("--phase", choices=("baseline", "lean-baseline", "rebuild"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase == "baseline":
        print(json.dumps(phase_baseline(args.store_url, read_pages_library)))
        return None
    if args.phase == "lean-baseline":
        print(json.dumps(phase_baseline(args.store_url, read_pages_lean)))
        return None
    if args.phase == "rebuild":
        print(json.dumps(phase_rebuild(args.store_url, args.batch_size)))
        return None

    kind = common.check_store_kind(args.store)
    url, count = ensure_store(kind, args.events, args.seed)
    baseline = run_phase("baseline", url, args.batch_size)
    lean = run_phase("lean-baseline", url, args.batch_size)
    rebuilt = run_phase("rebuild", url, args.batch_size)
    lean_rate = lean["events"] / lean["seconds"]
    baseline_rate = baseline["events"] / baseline["seconds"]
    rebuild_rate = rebuilt["events"] / rebuilt["seconds"]
    ratio = rebuild_rate / baseline_rate
    # The same ratio in CPU time: what it would be on a machine nobody shares.
    cpu_ratio = baseline["cpu_seconds"] / rebuilt["cpu_seconds"]
    floor = 20_000 if kind == "sqlite" else None
    passes = ratio >= 0.5 and (floor is None or rebuild_rate >= floor)
    result = {
        "benchmark": "P3 projection rebuild from scratch (and P8 rebuild peak RSS)",
        "measured_at": common.now_iso(),
        "store": kind,
        "events": count,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "machine": common.machine(),
        "baseline": "read + decode the notification log, no projection work",
        "baseline_events_per_s": round(baseline_rate),
        "rebuild_events_per_s": round(rebuild_rate),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "lean_baseline": "read (log_rows) and decode (projections/decoding.py) the "
                         "log as the rebuild does, no projection work",
        "lean_baseline_events_per_s": round(lean_rate),
        "ratio_to_lean_baseline": round(rebuild_rate / lean_rate, 3),
        "cpu_ratio_to_lean_baseline": round(lean["cpu_seconds"] / rebuilt["cpu_seconds"], 3),
        "bar_ratio": 0.5,
        "bar_events_per_s": floor,
        "passes": passes,
        "baseline_seconds": round(baseline["seconds"], 2),
        "rebuild_seconds": round(rebuilt["seconds"], 2),
        "rebuild_seconds_with_cleanup": round(rebuilt["seconds_with_cleanup"], 2),
        "baseline_cpu_seconds": round(baseline["cpu_seconds"], 2),
        "rebuild_cpu_seconds": round(rebuilt["cpu_seconds"], 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
        "rebuild_peak_rss_mb": round(rebuilt["peak_rss_mb"], 1),
        "reproduce": f"python -m bench.rebuild --store {kind} --events {args.events} "
                     f"--seed {args.seed}",
    }
    rows = [
        ("store", kind), ("events", f"{count:,}"),
        ("baseline: read + decode", f"{baseline_rate:,.0f} events/s"),
        ("rebuild from scratch", f"{rebuild_rate:,.0f} events/s"),
        ("ratio (bar >= 0.5)", f"{ratio:.2f}"),
        ("ratio in CPU time", f"{cpu_ratio:.2f}"),
        ("stricter: our read + decode", f"{lean_rate:,.0f} events/s"),
        ("ratio to it (not the bar)", f"{rebuild_rate / lean_rate:.2f}"),
        (">= 20,000 events/s (SQLite)", "n/a" if floor is None else
         ("yes" if rebuild_rate >= floor else "NO")),
        ("baseline peak RSS", f"{baseline['peak_rss_mb']:.0f} MB"),
        ("rebuild peak RSS", f"{rebuilt['peak_rss_mb']:.0f} MB"),
        ("passes", "yes" if passes else "NO"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    path = common.write_result(f"rebuild-{kind}-{count}", result)
    print(f"written to {path.relative_to(common.ROOT)}")
    return result


if __name__ == "__main__":
    main()
