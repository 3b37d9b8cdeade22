"""The stored histories P3, P4 and P7 run on: generated fast, deterministic, cached.

    python -m bench.dataset --events 1000000 --store sqlite|postgres [--seed 42]

writes `--events` events (default 1,000,000) over 20 clinics and events/100
programmes (10,000 for a million) through the library's batched saves —
`Programmes.save(*events, ledger=...)` exactly as `Programmes._record_new`
does, but with many programmes' events in one save, and no HTTP. The
histories are realistic (sessions, missed sessions, pain reports that fall
for responders, plan adjustments, adverse events with the severe ones
pausing, pauses and resumptions, corrections, discharges with outcomes),
every event goes through the `Programme` aggregate's rules, and the same seed
gives the same events (ids included; record times are the real ones).

The store is cached under bench/data/ (SQLite) or in the database
`traction_bench_d<events>_s<seed>` (PostgreSQL), with a description beside
it (bench/data/<store>-<events>-s<seed>.json: clinics, tokens, a sample of
programmes, how long generating took). It is reused while the generator's
code is unchanged; benchmarks that write work on a copy. When `traction
projections rebuild` exists, the read models are built once too, and rebuilt
when projections/ changes.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    DATA,
    ROOT,
    TRACTION,
    check_store_kind,
    checkpoint_sqlite,
    drop_store,
    fingerprint,
    fresh_store,
    log,
    now_iso,
    register,
    store_exists,
    store_url,
    traction_has,
)

CLINICS = [f"clinic-{n:02d}" for n in range(1, 21)]
#: Mean events per programme (1,000,000 events: 10,000 programmes).
EVENTS_PER_PROGRAMME = 100
#: Events per save: many programmes' events in one transaction.
SAVE_BATCH = 5_000
#: Programmes start in this window; every occurred_at stays before LATEST.
FIRST_START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
LAST_START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LATEST = datetime(2026, 11, 1, tzinfo=UTC)

MODALITIES = [("mechanical_table", 45), ("decompression_mat", 30), ("inversion", 10),
              ("stretching_exercises", 15)]
SETTINGS = {
    "mechanical_table": [("in_office", 80), ("hybrid", 20)],
    "decompression_mat": [("at_home", 85), ("hybrid", 15)],
    "inversion": [("at_home", 60), ("in_office", 40)],
    "stretching_exercises": [("at_home", 70), ("hybrid", 30)],
}
SESSIONS_PER_WEEK = {"mechanical_table": (2, 3), "decompression_mat": (7, 21),
                     "inversion": (3, 7), "stretching_exercises": (5, 14)}
MINUTES = {"mechanical_table": (20, 45), "decompression_mat": (10, 20),
           "inversion": (5, 15), "stretching_exercises": (10, 30)}
CONDITIONS = [("low_back_pain", 35), ("sciatica", 30), ("disc_herniation", 20),
              ("spinal_stenosis", 10), ("other", 5)]
CLINICIANS = [f"physio.{name}" for name in ("anna", "ben", "chloe", "dev", "emma", "farid")]

#: Bump when the generated histories change, so cached stores are regenerated.
GENERATOR_VERSION = 1


def pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class Envelope:
    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    recorded_by: str
    data: dict[str, Any]


def programme_history(rng: random.Random, patient_no: int, length: int) -> list[Envelope]:
    """A plausible history of `length` events for one programme (rules respected)."""
    modality = pick(rng, MODALITIES)
    setting = pick(rng, SETTINGS[modality])
    low, high = SESSIONS_PER_WEEK[modality]
    plan: dict[str, Any] = {"modality": modality, "sessions_per_week": rng.randint(low, high),
                            "minutes_per_session": rng.randint(*MINUTES[modality])}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = float(rng.choice([20, 25, 30, 35, 40]))
    baseline_pain = rng.randint(4, 9)
    responder = rng.random() < 0.55
    clinician = rng.choice(CLINICIANS)
    start = FIRST_START + (LAST_START - FIRST_START) * rng.random()
    # About half the events are sessions, at the plan's pace; the history
    # always ends before LATEST, however long it is.
    days_per_event = 7 / (2 * plan["sessions_per_week"]) * rng.uniform(0.8, 1.3)
    step = timedelta(days=min(days_per_event, ((LATEST - start).days - 1) / (1.5 * length)))
    baseline: dict[str, Any] = {"pain_nrs": baseline_pain}
    if rng.random() < 0.7:
        baseline["odi_percent"] = rng.randint(20, 70)
    history = [Envelope(new_uuid(rng), "ProgrammeStarted", start, clinician, {
        "patient_ref": f"pt-{patient_no:06d}", "condition": pick(rng, CONDITIONS),
        "setting": setting, "plan": dict(plan), "baseline": baseline})]
    discharge = length >= 3 and rng.random() < 0.6
    body_length = length - (1 if discharge else 0)
    t = start
    paused = False
    correctable: list[Envelope] = []

    def add(type_: str, data: dict[str, Any]) -> Envelope:
        # Home devices post late: clinical time may go back a little (never before start).
        late = timedelta(hours=rng.uniform(0, 12)) if setting == "at_home" else timedelta(0)
        envelope = Envelope(new_uuid(rng), type_, max(start, t - late), clinician, data)
        history.append(envelope)
        return envelope

    def pain_now() -> int:
        progress = (t - start) / (step * length) if length else 0
        drop = (baseline_pain * 0.6 if responder else 1.0) * progress
        return max(0, min(10, round(baseline_pain - drop + rng.gauss(0, 0.8))))

    def session_data() -> dict[str, Any]:
        data: dict[str, Any] = {"modality": plan["modality"],
                                "duration_minutes": max(1, plan["minutes_per_session"]
                                                        + rng.randint(-5, 5)),
                                "supervised": setting == "in_office"}
        if plan["modality"] == "mechanical_table":
            data["force_percent_body_weight"] = plan["force_percent_body_weight"]
        if rng.random() < 0.5:
            data["discomfort_nrs"] = rng.randint(0, 5)
        return data

    while len(history) < body_length:
        t += step * rng.uniform(0.5, 1.5)
        r = rng.random()
        if paused:
            if r < 0.4:
                add("ProgrammeResumed", {})
                paused = False
            else:
                correctable.append(add("PainReported", {"pain_nrs": pain_now(),
                                                        "context": "follow_up"}))
            continue
        if r < 0.50:
            correctable.append(add("SessionCompleted", session_data()))
        elif r < 0.75:
            report: dict[str, Any] = {"pain_nrs": pain_now(),
                                      "context": rng.choice(["before_session", "after_session"])}
            if rng.random() < 0.3:
                report["sleep_quality_nrs"] = rng.randint(2, 9)
            if rng.random() < 0.2:
                report["odi_percent"] = rng.randint(10, 70)
            correctable.append(add("PainReported", report))
        elif r < 0.84:
            add("SessionMissed", {"reason": rng.choice(
                ["pain", "schedule", "schedule", "equipment", "illness", "other"])})
        elif r < 0.87:
            low, high = SESSIONS_PER_WEEK[plan["modality"]]
            choices = [n for n in range(low, high + 1) if n != plan["sessions_per_week"]]
            if not choices:
                choices = [plan["sessions_per_week"] + 1]
            plan["sessions_per_week"] = rng.choice(choices)
            add("PlanAdjusted", {"sessions_per_week": plan["sessions_per_week"],
                                 "reason": "progress review"})
        elif r < 0.895:
            severity = pick(rng, [("mild", 75), ("moderate", 20), ("severe", 5)])
            if severity == "severe" and body_length - len(history) < 2:
                severity = "moderate"
            add("AdverseEventReported", {"severity": severity,
                                         "description": "increased radicular pain after session"})
            if severity == "severe":
                # The aggregate records the pause in the same save; count it here.
                history.append(Envelope(uuid.UUID(int=0), "(derived pause)", t, clinician, {}))
                paused = True
        elif r < 0.91 and body_length - len(history) >= 2:
            add("ProgrammePaused", {"reason": rng.choice(["travel", "illness", "flare-up"])})
            paused = True
        elif r < 0.94 and correctable:
            target = rng.choice(correctable)
            data = dict(target.data)
            if target.type == "PainReported":
                data["pain_nrs"] = max(0, min(10, data["pain_nrs"] + rng.choice([-1, 1])))
            else:
                data["duration_minutes"] = max(1, data["duration_minutes"] + 5)
            add("EntryCorrected", {"corrects": str(target.event_id), "data": data,
                                   "reason": "entered the wrong value"})
        else:
            correctable.append(add("SessionCompleted", session_data()))
    if discharge:
        t += step
        latest_pain = pain_now()
        outcome = ("goals_met" if responder and latest_pain <= 2 else "improved" if responder
                   else rng.choice(["no_change", "no_change", "worsened", "referred",
                                    "dropped_out"]))
        add("ProgrammeDischarged", {"outcome": outcome})
    return [e for e in history if e.type != "(derived pause)"]


def history_lengths(rng: random.Random, events: int, programmes: int) -> list[int]:
    """Programme lengths that vary (0.4x to 1.6x the mean) and sum to exactly `events`."""
    mean = events / programmes
    lengths = [max(3, round(mean * rng.uniform(0.4, 1.6))) for _ in range(programmes)]
    difference = events - sum(lengths)
    index = 0
    while difference != 0:
        step = 1 if difference > 0 else -1
        if lengths[index % programmes] + step >= 3:
            lengths[index % programmes] += step
            difference -= step
        index += 1
    return lengths


def generate_programmes(seed: int, events: int, programmes: int
                        ) -> Iterator[tuple[str, uuid.UUID, list[Envelope]]]:
    """(clinic_id, programme_id, history) for every programme, deterministically."""
    rng = random.Random(seed)
    lengths = history_lengths(rng, events, programmes)
    weights = [1 / (n + 1) ** 0.5 for n in range(len(CLINICS))]  # clinics of varied size
    for number, length in enumerate(lengths):
        clinic_id = rng.choices(CLINICS, weights)[0]
        programme_id = new_uuid(rng)
        yield clinic_id, programme_id, programme_history(rng, number + 1, length)


def record(app: Any, histories: list[tuple[str, uuid.UUID, list[Envelope]]],
           now: datetime) -> int:
    """Run every history through the aggregate and save them all in ONE save, with
    ledger entries exactly as Programmes._record_new builds them. Returns events saved."""
    from domain.application import EventEnvelope
    from domain.ledger import LedgerEntry
    from domain.programme import Programme

    pending: list[Any] = []
    ledger: list[LedgerEntry] = []
    for clinic_id, programme_id, history in histories:
        first = history[0]
        programme = Programme.start(programme_id=programme_id, clinic_id=clinic_id,
                                    event_id=first.event_id, occurred_at=first.occurred_at,
                                    recorded_by=first.recorded_by, data=first.data, now=now)
        for envelope in history[1:]:
            command = getattr(programme, Programme.COMMANDS[envelope.type])
            command(envelope.event_id, envelope.occurred_at, envelope.recorded_by,
                    envelope.data, now)
        digests = {
            e.event_id: EventEnvelope(e.event_id, e.type, e.occurred_at, e.recorded_by,
                                      e.data).content_digest(programme_id)
            for e in history
        }
        for event in programme.collect_events():
            pending.append(event)
            ledger.append(LedgerEntry(event_id=event.event_id, clinic_id=clinic_id,
                                      event_type=type(event).__name__,
                                      content_digest=digests.get(event.event_id)))
    if pending:
        app.save(*pending, ledger=ledger)
    return len(pending)


def check_against_schemas(histories: list[tuple[str, uuid.UUID, list[Envelope]]]) -> None:
    """The generated data is exactly what the HTTP schemas would have stored."""
    from service.http.schemas.events import EventEnvelopeSchema

    schema = EventEnvelopeSchema()
    for _, _, history in histories[:5]:
        for e in history:
            loaded = schema.load({"event_id": str(e.event_id), "type": e.type,
                                  "occurred_at": e.occurred_at.isoformat(),
                                  "recorded_by": e.recorded_by, "data": e.data})
            if loaded["data"] != e.data:
                raise AssertionError(f"generated {e.type} data differs after validation: "
                                     f"{e.data} vs {loaded['data']}")


# ---- the cached store ---------------------------------------------------------


def dataset_name(events: int, seed: int) -> str:
    return f"d{events}_s{seed}"


def meta_path(kind: str, events: int, seed: int) -> Path:
    return DATA / f"{kind}-{events}-s{seed}.json"


def store_head(url: str) -> int:
    """The ledger's last position (0 when empty or missing)."""
    from service.storage.stores import parse_database_url

    store = parse_database_url(url)
    try:
        if store.is_postgres:
            import psycopg

            with psycopg.connect(store.conninfo(), connect_timeout=5) as conn:
                row = conn.execute("SELECT COALESCE(MAX(position), 0) FROM event_ledger"
                                   ).fetchone()
        else:
            import sqlite3

            assert store.sqlite_path is not None
            conn = sqlite3.connect(store.sqlite_path)
            try:
                row = conn.execute("SELECT COALESCE(MAX(position), 0) FROM event_ledger"
                                   ).fetchone()
            finally:
                conn.close()
        return int(row[0]) if row else 0
    except Exception:  # noqa: BLE001 - a missing table or database means "nothing"
        return 0


def generator_fingerprint() -> str:
    # Not a digest of the code: the store must survive unrelated edits of the
    # service. Bump GENERATOR_VERSION (or pass --force) when the histories or
    # the stored format change.
    return f"v{GENERATOR_VERSION}"


def generate(kind: str, events: int, seed: int, programmes: int | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Generate the store from scratch; return its description."""
    from service.bootstrap import open_programmes
    from service.config import Settings

    name = dataset_name(events, seed)
    programmes = programmes or max(1, events // EVENTS_PER_PROGRAMME)
    log(f"generating {events:,} events, {programmes:,} programmes, {len(CLINICS)} clinics "
        f"on {kind} ({store_url(kind, name)})")
    meta_path(kind, events, seed).unlink(missing_ok=True)
    url = fresh_store(kind, name)
    # No cache: each programme is saved once, many in a save.
    app = open_programmes(Settings(database_url=url, aggregate_cache_size=0))
    now = datetime.now(UTC)
    rng = random.Random(seed + 1)
    sample: list[dict[str, str]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=events, unit="ev", unit_scale=True, desc=f"{kind} {name}")
    started = time.perf_counter()
    saved = 0
    batch: list[tuple[str, uuid.UUID, list[Envelope]]] = []
    batch_events = 0
    checked = False
    try:
        for clinic_id, programme_id, history in generate_programmes(seed, events, programmes):
            batch.append((clinic_id, programme_id, history))
            batch_events += len(history)
            if len(sample) < 500 and rng.random() < 0.2:
                sample.append({"clinic_id": clinic_id, "programme_id": str(programme_id)})
            if batch_events >= SAVE_BATCH:
                if not checked:
                    check_against_schemas(batch)
                    checked = True
                count = record(app, batch, now)
                saved += count
                if bar:
                    bar.update(count)
                batch, batch_events = [], 0
        count = record(app, batch, now)
        saved += count
        if bar:
            bar.update(count)
    finally:
        if bar:
            bar.close()
        app.close()
    seconds = time.perf_counter() - started
    if saved != events:
        raise AssertionError(f"saved {saved} events, expected {events}")
    if kind == "sqlite":
        checkpoint_sqlite(name)
    tokens = register(url, CLINICS)
    log(f"generated {saved:,} events in {seconds:.1f} s ({saved / seconds:,.0f} events/s)")
    meta = {
        "store": kind,
        "url": url,
        "name": name,
        "events": events,
        "programmes": programmes,
        "clinics": CLINICS,
        "seed": seed,
        "generator": generator_fingerprint(),
        "generated_at": now_iso(),
        "generation": {"seconds": round(seconds, 1), "events_per_s": round(saved / seconds),
                       "events_per_save": SAVE_BATCH},
        "tokens": tokens,
        "sample_programmes": sample,
        "projections": None,
        "complete": True,
    }
    write_meta(kind, events, seed, meta)
    return meta


def write_meta(kind: str, events: int, seed: int, meta: dict[str, Any]) -> None:
    path = meta_path(kind, events, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)


def load_meta(kind: str, events: int, seed: int) -> dict[str, Any] | None:
    path = meta_path(kind, events, seed)
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    if not meta.get("complete") or meta.get("generator") != generator_fingerprint():
        return None
    if not store_exists(kind, meta["name"]) or store_head(meta["url"]) != events:
        return None
    return meta


def build_projections(kind: str, events: int, seed: int, meta: dict[str, Any]) -> None:
    """Build the read models once with `traction projections rebuild`, if it exists."""
    if not traction_has("projections", "rebuild"):
        meta["projections"] = {"status": "not available yet (no `traction projections "
                                         "rebuild`)"}
        write_meta(kind, events, seed, meta)
        return
    wanted = fingerprint(ROOT / "projections")
    current = meta.get("projections") or {}
    if current.get("fingerprint") == wanted and current.get("status") == "built":
        return
    log(f"building the read models of {meta['name']} on {kind} (traction projections rebuild)")
    started = time.perf_counter()
    done = subprocess.run([TRACTION, "projections", "rebuild"],
                          env={**os.environ, "TRACTION_DATABASE_URL": meta["url"]},
                          capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        meta["projections"] = {"status": "rebuild failed", "stderr": done.stderr[-2000:]}
        log("  rebuild failed: " + done.stderr[-500:])
    else:
        meta["projections"] = {"status": "built", "fingerprint": wanted,
                               "seconds": round(seconds, 1)}
        log(f"  built in {seconds:.0f} s")
        if kind == "sqlite":
            checkpoint_sqlite(meta["name"])
    write_meta(kind, events, seed, meta)


def ensure(kind: str, events: int, seed: int = 42, *, force: bool = False,
           projections: bool = True, progress: bool = True) -> dict[str, Any]:
    """The cached store, generated first if it is missing or stale.

    Several benchmarks share these stores: a lock file makes a second caller
    wait for the first one's generation instead of generating over it."""
    lock_path = meta_path(kind, events, seed).with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            meta = None if force else load_meta(kind, events, seed)
            if meta is None:
                meta = generate(kind, events, seed, progress=progress)
            else:
                log(f"reusing {events:,}-event {kind} store {meta['name']} (generated in "
                    f"{meta['generation']['seconds']} s on {meta['generated_at']})")
            if projections:
                build_projections(kind, events, seed, meta)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    parser.add_argument("--no-projections", action="store_true",
                        help="do not build the read models")
    parser.add_argument("--drop", action="store_true", help="drop the cached store and exit")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    if args.drop:
        drop_store(kind, dataset_name(args.events, args.seed))
        meta_path(kind, args.events, args.seed).unlink(missing_ok=True)
        return
    meta = ensure(kind, args.events, args.seed, force=args.force,
                  projections=not args.no_projections)
    summary = {k: meta[k] for k in ("store", "url", "events", "programmes", "generation",
                                    "projections")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
