"""Audit: verify and export throughput over the whole log, vs reading it alone.

    python -m bench.audit                          # 1,000,000 events on SQLite
    python -m bench.audit --events 100000
    python -m bench.audit --store postgres --events 100000

The store is bench/dataset.py's (generated once through `Programmes.save`
batches, deterministic from --seed, cached and reused). Each phase runs in
its own process, so its peak RSS is its own (the walks stream: it should not
grow with the log):

1. baseline, read: the library's notification log in pages of the walk's
   window, nothing else;
2. baseline, read + decode: the same, each event decoded by the mapper;
3. verify: `verify_store`, the whole chain recomputed (reads the ledger and
   the events, hashes each entry);
4. export: `export_log` of the whole log to a file (decodes too, writes JSON);
5. export one clinic (the largest): its events in full, links for the rest;
6. offline verify of the whole-log export (no database).

The chain alone is verified (the cached store holds no checkpoints, and none are
written: it is left as it was).
Prints a table; writes bench/results/audit-<store>-<events>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common

#: A fixed key (bench data, not a secret): 256 bits, as a signing key must be.
KEY = "5be3c1d09a8f4e2b7c6d1a0f9e8b7c6d5a4f3e2d1c0b9a8f7e6d5c4b3a291807"
PHASES = ("read", "decode", "verify", "export", "export_clinic", "verify_export")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _open(url: str) -> tuple[Any, Any]:
    from service.bootstrap import open_components
    from service.config import Settings

    components = open_components(Settings(database_url=url))
    return components.programmes, components.database


def export_path(url: str, name: str) -> Path:
    tmp = common.DATA / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return tmp / f"audit-{name}-{digest}.jsonl"


def largest_clinic(database: Any) -> str:
    with database.transaction() as cursor:
        row = cursor.execute("SELECT clinic_id, COUNT(*) AS n FROM event_ledger "
                             "GROUP BY clinic_id ORDER BY n DESC LIMIT 1").fetchone()
    return row["clinic_id"]


def run_phase(phase: str, url: str) -> dict[str, Any]:
    """One measured phase, in this process; returns events, seconds, peak RSS."""
    from service.audit.checkpoints import CheckpointKeys, Checkpoints
    from service.audit.export import export_log, verify_export
    from service.audit.log import WINDOW, audit_recorder
    from service.audit.verify import verify_store

    keys = CheckpointKeys.from_secrets(KEY)
    result: dict[str, Any] = {}
    if phase == "verify_export":
        from service.bootstrap import offline_programmes

        offline = offline_programmes()
        path = export_path(url, "all")
        began = time.perf_counter()
        with path.open(encoding="utf-8") as lines:
            report = verify_export(lines, keys, offline.mapper)
        seconds = time.perf_counter() - began
        offline.close()
        assert report.ok, report.failure
        return {"events": report.events_checked, "seconds": seconds,
                "peak_rss_mb": peak_rss_mb()}

    programmes, database = _open(url)
    try:
        recorder = audit_recorder(programmes)
        began = time.perf_counter()
        if phase in ("read", "decode"):
            decode = programmes.mapper.to_domain_event
            position, count = 0, 0
            while True:
                page = programmes.recorder.select_notifications(
                    start=position, limit=WINDOW, inclusive_of_start=False)
                if not page:
                    break
                if phase == "decode":
                    for notification in page:
                        decode(notification)
                count += len(page)
                position = page[-1].id
            result["events"] = count
        elif phase == "verify":
            report = verify_store(recorder, Checkpoints(database), keys, None,
                                  write_checkpoint=False, use_checkpoints=False)
            assert report.ok, report.failure
            result["events"] = report.events_checked
        else:
            clinic = largest_clinic(database) if phase == "export_clinic" else None
            path = export_path(url, "all" if clinic is None else "clinic")
            with path.open("w", encoding="utf-8") as out:
                summary = export_log(recorder, programmes.mapper, Checkpoints(database), keys,
                                     None, out, clinic_id=clinic, write_checkpoint=False)
            assert summary.report.ok, summary.report.failure
            result.update(events=summary.events + summary.links, exported=summary.events,
                          file_mb=round(path.stat().st_size / 2**20, 1), clinic=clinic)
        result["seconds"] = time.perf_counter() - began
    finally:
        programmes.close()
        database.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def in_process(phase: str, url: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.audit", "--phase", phase, "--store-url", url],
        cwd=common.ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=common.STORE_KINDS, default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-exports", action="store_true",
                        help="keep the export files (under bench/data/tmp/)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase is not None:
        print(json.dumps(run_phase(args.phase, args.store_url)))
        return None

    from bench import dataset

    kind = common.check_store_kind(args.store)
    meta = dataset.ensure(kind, args.events, args.seed, projections=False)
    url = meta["url"]
    measured: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        common.log(f"audit bench: {phase} over {args.events:,} events on {kind}")
        measured[phase] = in_process(phase, url)
        measured[phase]["events_per_s"] = round(measured[phase]["events"]
                                                / measured[phase]["seconds"])
    if not args.keep_exports:
        for name in ("all", "clinic"):
            export_path(url, name).unlink(missing_ok=True)

    read_rate = measured["read"]["events_per_s"]
    decode_rate = measured["decode"]["events_per_s"]
    result = {
        "benchmark": "audit: verify and export throughput",
        "measured_at": common.now_iso(),
        "store": kind,
        "events": args.events,
        "seed": args.seed,
        "machine": common.machine(),
        "baselines": {"read": "the notification log read in pages, nothing else",
                      "decode": "the same, each event decoded by the mapper"},
        "phases": {
            name: {**values,
                   "seconds": round(values["seconds"], 2),
                   "peak_rss_mb": round(values["peak_rss_mb"], 1),
                   "ratio_to_read": common.ratio(values["events_per_s"], read_rate),
                   "ratio_to_decode": common.ratio(values["events_per_s"], decode_rate)}
            for name, values in measured.items()
        },
        "reproduce": f"python -m bench.audit --store {kind} --events {args.events} "
                     f"--seed {args.seed}",
    }
    labels = {
        "read": "baseline: read the log",
        "decode": "baseline: read + decode",
        "verify": "verify (recompute the chain)",
        "export": "export, whole log",
        "export_clinic": "export, one clinic",
        "verify_export": "verify an export offline",
    }
    print(f"\naudit over {args.events:,} events on {kind}\n")
    print(f"{'phase':<32} {'events/s':>10} {'x read':>7} {'x decode':>9} {'peak RSS':>9}")
    for name, values in result["phases"].items():
        print(f"{labels[name]:<32} {values['events_per_s']:>10,} "
              f"{values['ratio_to_read']:>7.2f} {values['ratio_to_decode']:>9.2f} "
              f"{values['peak_rss_mb']:>7.0f}MB")
    export = result["phases"]["export"]
    print(f"\nwhole-log export: {export['file_mb']} MB")
    path = common.write_result(f"audit-{kind}-{args.events}", result)
    print(f"written to {path.relative_to(common.ROOT)}")
    return result


if __name__ == "__main__":
    main()
