"""FHIR Bulk Data export of one clinic: its rate, and its peak memory as the
clinic grows (it must not grow with the clinic).

    python -m bench.fhir_export --store sqlite|postgres [--sizes 100000,1000000]

For each size (events), a fresh store holding ONE clinic with that many events
(bench/dataset.py's realistic histories, 100 events per programme on average,
every event through the aggregate's rules, saved in batches), then the export
as the service runs it: a job created, run on its thread by `BulkExports`
(service/fhir/bulk.py) to NDJSON files, in a process of its own that has
opened the service's parts exactly as a worker does. Measured in that process:
the export's wall time, events/s and resources/s, and its peak RSS (VmHWM)
before the export (the parts opened: the baseline) and after it.

Bar: the largest size's peak within 1.2x of the smallest's (memory is bounded
by the largest programme, not the clinic). The rate is printed against the
smallest size's in the same run (growth ratio of time per event).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    check_store_kind,
    fresh_store,
    log,
    machine,
    now_iso,
    register,
    write_result,
)
from bench.dataset import EVENTS_PER_PROGRAMME, SAVE_BATCH, generate_programmes, record

CLINIC = "bench-fhir"


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def build(kind: str, events: int, seed: int = 7) -> str:
    """A fresh store with one clinic of `events` events."""
    from service.bootstrap import open_programmes
    from service.config import Settings

    url = fresh_store(kind, f"fhir_export_{events}")
    app = open_programmes(Settings(database_url=url, aggregate_cache_size=0))
    now = datetime.now(UTC)
    batch: list[Any] = []
    size = saved = 0
    started = time.perf_counter()
    try:
        for _, programme_id, history in generate_programmes(
                seed, events, max(1, events // EVENTS_PER_PROGRAMME)):
            batch.append((CLINIC, programme_id, history))
            size += len(history)
            if size >= SAVE_BATCH:
                saved += record(app, batch, now)
                batch, size = [], 0
        saved += record(app, batch, now)
    finally:
        app.close()
    register(url, [CLINIC])
    log(f"{saved:,} events in one clinic in {time.perf_counter() - started:.0f} s")
    return url


def export_here(url: str, directory: str) -> dict[str, Any]:
    """Run one export as a worker runs it (in this process); its figures."""
    from service.bootstrap import open_components
    from service.config import Settings

    components = open_components(Settings(database_url=url, fhir_export_dir=directory))
    try:
        exports = components.fhir_exports
        assert exports is not None
        before = peak_rss_kb()
        job = exports.jobs.create(CLINIC, "bench", ("Organization", "EpisodeOfCare",
                                                    "Condition", "CarePlan", "Procedure",
                                                    "Observation", "AdverseEvent",
                                                    "Provenance"), None)
        started = time.perf_counter()
        exports.start(job)
        exports.wait(job.job_id)
        seconds = time.perf_counter() - started
        done = exports.jobs.get(CLINIC, job.job_id)
        assert done is not None and done.status == "completed", done
        return {"seconds": round(seconds, 2), "resources": sum(o["count"] for o in done.output),
                "output": done.output, "rss_before_kb": before, "peak_rss_kb": peak_rss_kb(),
                "bytes": sum(f.stat().st_size for f in Path(directory).rglob("*.ndjson"))}
    finally:
        components.close()


def measure(url: str, events: int, directory: Path) -> dict[str, Any]:
    shutil.rmtree(directory, ignore_errors=True)
    child = subprocess.run([sys.executable, "-m", "bench.fhir_export", "--export-only", url,
                            str(directory)], capture_output=True, text=True, check=True)
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    figures["events"] = events
    figures["events_per_s"] = round(events / figures["seconds"])
    figures["resources_per_s"] = round(figures["resources"] / figures["seconds"])
    shutil.rmtree(directory, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated event counts (smallest first)")
    parser.add_argument("--export-only", nargs=2, metavar=("URL", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_only:
        print(json.dumps(export_here(*args.export_only)))
        return
    kind = check_store_kind(args.store)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for events in sizes:
        url = build(kind, events)
        figures = measure(url, events, Path(f"/tmp/traction-bench-fhir-{events}"))
        rows.append(figures)
        log(f"{events:>9,} events: {figures['seconds']:.1f} s, {figures['events_per_s']:,} "
            f"events/s, {figures['resources_per_s']:,} resources/s, peak RSS "
            f"{figures['peak_rss_kb'] / 1024:.0f} MB (before: "
            f"{figures['rss_before_kb'] / 1024:.0f} MB)")
    small, large = rows[0], rows[-1]
    growth = {
        "events": large["events"] / small["events"],
        "peak_rss": round(large["peak_rss_kb"] / small["peak_rss_kb"], 3),
        "seconds_per_event": round((large["seconds"] / large["events"])
                                   / (small["seconds"] / small["events"]), 3),
    }
    verdict = "PASS" if growth["peak_rss"] <= 1.2 else "FAIL"
    print(f"peak RSS {large['peak_rss_kb'] / 1024:.0f} MB at {large['events']:,} events vs "
          f"{small['peak_rss_kb'] / 1024:.0f} MB at {small['events']:,}: x{growth['peak_rss']} "
          f"(bar <= 1.2: {verdict}); time per event x{growth['seconds_per_event']}")
    write_result(f"fhir_export_{kind}", {"measured_at": now_iso(), "machine": machine(),
                                          "store": kind, "sizes": rows, "growth": growth,
                                          "verdict": verdict})


if __name__ == "__main__":
    main()
