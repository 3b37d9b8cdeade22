"""P10: bulk NDJSON ingest, 1,000 programmes interleaved, against the library's
own batched save (P2's baseline); and the worker's peak memory as the upload
grows (bounded: it must not grow with the upload).

    python -m bench.bulk --store sqlite|postgres [--quick] [--lines N]
                         [--memory-mb 64,1024]
    python -m bench.bulk --store sqlite|postgres --gigabyte [MB]

Throughput: `traction serve --no-projections` (2 workers) on a fresh store,
`--lines` lines (100,000; 20,000 with --quick) sent to
POST /v1/clinics/{c}/events:bulk, chunked, the answer read as it is sent (a
real socket, full duplex), lines of 1,000 programmes interleaved: each
starts, then sessions and pain reports. Two loads, each round, each on a
fresh store and server:
- one upload of all the lines (one worker does all the work);
- AT_ONCE (2) uploads sent at the same time, each with its own half of the
  programmes and of the lines: a sync split by programme, as the README
  advises for speed, which puts both workers to work, as P2's four
  connections do (the kernel hands each connection to a worker: were one
  worker to take both, the figure would be about one upload's, never more).
events/s = lines answered 201 / the time from the first byte sent to the
last summary line. The baseline is the eventsourcing library alone saving
100-event aggregates in one thread (bench/ingest.py, P2), measured in the
same run, before each round. Bar: >= 0.5 of it, read on the uploads at once
(the service as it is deployed, as P2 reads it); the one upload's ratio is
reported beside it.

Memory: uploads of each size in --memory-mb (MB of NDJSON; 64 and 1,024 by
default, 32 and 96 with --quick), each to a fresh server, generated as they
are sent; programmes of 60 events each, 1,000 of them in the upload at any
moment (a programme is replaced by a new one once it has its 60). The
serving worker's peak RSS (VmHWM) after each. Bar: the largest upload's peak
within 1.2x of the smallest's (nothing grows with the upload). The smallest
is past the point where the worker's programme cache (1,000 programmes,
TRACTION_AGGREGATE_CACHE_SIZE) is full: that memory is the cache's, bounded
by its size and the programmes' lengths, not by the upload.

1 GB (--gigabyte, not part of any run_all run: about ten minutes): one upload
of 1,024 MB (3.3 million lines, every one a new event), generated as it is
sent, to a fresh one-worker server; the worker's RSS and peak RSS read from
/proc every second. Bar: the peak at the end within 1.2x of the peak once half
of the lines were answered (by then the per-process caches are full: the
keyring's 20,000 data keys take 1.2 million lines of this mix).
bench/results/p10-gigabyte-<store>.json; bench/report.py adds it to P10's row.
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    Server,
    check_store_kind,
    drop_store,
    fresh_store,
    log,
    machine,
    median_rate,
    now_iso,
    proc_status,
    ratio,
    register,
    write_result,
)
from bench.dataset import CLINICS, store_head
from bench.ingest import library_baseline
from bench.scenario import Timing

WORKERS = 2
INTERLEAVED = 1_000
#: Uploads sent at once in P10's second load: one per worker.
AT_ONCE = WORKERS
#: About twelve weeks of three sessions, with pain reports between.
EVENTS_PER_PROGRAMME = 60
HOST = "127.0.0.1"


def lines(count: int | None, *, limit_bytes: int | None = None, seed: int = 0,
          interleaved: int = INTERLEAVED) -> Iterator[bytes]:
    """NDJSON lines, `interleaved` programmes at a time, each EVENTS_PER_PROGRAMME
    long (a programme that has all its events is replaced by a new one): `count`
    lines, or as many as fit in `limit_bytes`. Made from templates, cheaply: the
    client shares the machine with the server it measures. Lines of different
    seeds are of different programmes and events."""
    start = (datetime.now(UTC) - timedelta(days=90)).replace(microsecond=0)
    started_at = start.isoformat()
    prefix = f"{seed & 0xffff:04x}{secrets.token_hex(2)}"
    slots = [(n, 0) for n in range(interleaved)]
    programmes = interleaved
    sent = size = 0
    while count is None or sent < count:
        slot = sent % interleaved
        programme, events = slots[slot]
        if events == EVENTS_PER_PROGRAMME:
            programme, events = programmes, 0
            programmes += 1
        programme_id = f"{prefix}-0000-4000-8000-{programme:012x}"
        event_id = f"{prefix}-0001-4000-8000-{sent:012x}"
        if events == 0:
            text = STARTED % (programme_id, event_id, started_at, programme)
        else:
            when = (start + timedelta(minutes=events)).isoformat()
            if events % 3 == 0:
                text = PAIN % (programme_id, event_id, when, events % 11)
            else:
                text = SESSION % (programme_id, event_id, when, events % 7)
        line = text.encode()
        size += len(line)
        if limit_bytes is not None and size > limit_bytes:
            return
        slots[slot] = (programme, events + 1)
        sent += 1
        yield line


STARTED = ('{"programme_id": "%s", "event_id": "%s", "type": "ProgrammeStarted", '
           '"occurred_at": "%s", "recorded_by": "bench.bulk", "data": {"patient_ref": '
           '"pt-%d", "condition": "sciatica", "setting": "in_office", "plan": {"modality": '
           '"mechanical_table", "sessions_per_week": 3, "minutes_per_session": 30, '
           '"force_percent_body_weight": 30}, "baseline": {"pain_nrs": 7, "odi_percent": 40}}}\n')
PAIN = ('{"programme_id": "%s", "event_id": "%s", "type": "PainReported", "occurred_at": '
        '"%s", "recorded_by": "bench.bulk", "data": {"pain_nrs": %d, '
        '"context": "after_session"}}\n')
SESSION = ('{"programme_id": "%s", "event_id": "%s", "type": "SessionCompleted", '
           '"occurred_at": "%s", "recorded_by": "bench.bulk", "data": {"modality": '
           '"mechanical_table", "duration_minutes": 30, "supervised": true, '
           '"force_percent_body_weight": 30, "discomfort_nrs": %d}}\n')


def upload(port: int, clinic_id: str, token: str, body: Iterator[bytes],
           answered: list[int] | None = None) -> dict[str, Any]:
    """Send the lines chunked while reading the answer; the summary, and timing
    (`answered[0]` counts the lines answered so far, for a watcher)."""
    sock = socket.create_connection((HOST, port), timeout=600)
    summary: dict[str, Any] = {}
    answered = answered if answered is not None else [0]
    failure: list[BaseException] = []

    def read() -> None:
        try:
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
            while line := response.readline():
                if line.startswith(b'{"summary"'):  # only the last line is read
                    summary.update(json.loads(line)["summary"])
                else:
                    answered[0] += 1
        except BaseException as error:  # noqa: BLE001 - reported below
            failure.append(error)

    reader = threading.Thread(target=read, daemon=True)
    began = time.perf_counter()
    sock.sendall((f"POST /v1/clinics/{clinic_id}/events:bulk HTTP/1.1\r\nHost: {HOST}\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n"
                  "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
    reader.start()
    sent = 0
    block: list[bytes] = []
    for line in body:
        block.append(line)
        if len(block) == 200:
            data = b"".join(block)
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            sent += len(data)
            block = []
    if block:
        data = b"".join(block)
        sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        sent += len(data)
    sock.sendall(b"0\r\n\r\n")
    reader.join()
    seconds = time.perf_counter() - began
    sock.close()
    if failure or not summary:
        raise RuntimeError(f"the upload's answer broke off: {failure}")
    return {**summary, "seconds": round(seconds, 2), "bytes": sent,
            "events_per_s": round(summary["recorded"] / seconds)}


def run_p10(kind: str, timing: Timing, count: int, memory_mb: list[int]) -> dict[str, Any]:
    """P10's throughput (rounds alternating with the library's baseline) and memory."""
    log(f"P10 bulk NDJSON ingest on {kind}: {count:,} lines, {INTERLEAVED:,} programmes "
        "interleaved")
    result: dict[str, Any] = {
        "benchmark": "P10 bulk NDJSON ingest", "store": kind, "measured_at": now_iso(),
        "machine": machine(), "timing": timing.describe(), "workers": WORKERS, "notes": []}
    base_runs, one_runs, at_once_runs = [], [], []
    for number in range(1, timing.rounds + 1):
        base_runs.append(library_baseline(kind, timing.duration, store="p10lib"))
        one_runs.append(ingest_round(kind, count, 1, number))
        at_once_runs.append(ingest_round(kind, count, AT_ONCE, number))
    base_rate = median_rate(base_runs)
    one_rate, at_once_rate = median_rate(one_runs), median_rate(at_once_runs)
    rate_ratio = ratio(at_once_rate, base_rate)
    memory = measure_memory(kind, memory_mb)
    growth = memory[-1]["peak_rss_mb"] / memory[0]["peak_rss_mb"] if memory else None
    passes = (rate_ratio is not None and rate_ratio >= 0.5
              and all(r["failed"] == 0 and r["stored"] == r["recorded"]
                      for r in one_runs + at_once_runs)
              and growth is not None and growth <= 1.2)
    result.update({
        "status": "ok",
        "load": f"{count:,} lines, {INTERLEAVED:,} programmes interleaved, chunked, the "
                f"answer read as it is sent: {AT_ONCE} uploads at once, each with its own "
                f"programmes (the bar's figure), and one upload of them all",
        "baseline_what": "eventsourcing alone: bare Aggregate, Application.save per 100-event "
                         "batch, same store kind, no HTTP, one thread (P2's baseline)",
        "baseline": {"events_per_s": base_rate, "runs": base_runs},
        "ours": {"events_per_s": at_once_rate, "uploads": AT_ONCE, "runs": at_once_runs},
        "one_upload": {"events_per_s": one_rate, "runs": one_runs,
                       "ratio": ratio(one_rate, base_rate)},
        "ratio": rate_ratio,
        "memory": memory, "memory_growth": round(growth, 3) if growth else None,
        "bars": {"ratio_min": 0.5, "memory_growth_max": 1.2}, "passes": passes,
        "reproduce": f"python -m bench.bulk --store {kind}",
    })
    write_result(f"p10-{kind}", result)
    return result


def ingest_round(kind: str, count: int, uploads: int, number: int) -> dict[str, Any]:
    """`count` lines in `uploads` uploads sent at once to a fresh server, each with
    its own programmes (INTERLEAVED / uploads of them) and an equal share of the
    lines: the lines answered 201 per second from the first byte sent to the
    last summary line."""
    clinic_id = CLINICS[0]
    url = fresh_store(kind, "p10")
    tokens = register(url, [clinic_id])
    try:
        with Server("traction", database_url=url, workers=WORKERS,
                    label=f"p10-{kind}-{number}-{uploads}") as ours:
            # Made before the clock starts; each upload of other programmes.
            bodies = [list(lines(count // uploads, seed=number * 10 + n,
                                 interleaved=INTERLEAVED // uploads))
                      for n in range(uploads)]
            runs: list[dict[str, Any]] = [{} for _ in bodies]

            def send(n: int) -> None:
                runs[n] = upload(ours.port, clinic_id, tokens["writers"][clinic_id],
                                 iter(bodies[n]))

            senders = [threading.Thread(target=send, args=(n,)) for n in range(uploads)]
            began = time.perf_counter()
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            seconds = time.perf_counter() - began
            if not all(runs):
                raise RuntimeError("an upload broke off; see the log above")
            stored = store_head(url)
            rss = ours.rss()
    finally:
        drop_store(kind, "p10")
    run = {"uploads": uploads, "seconds": round(seconds, 2),
           "lines": sum(r["lines"] for r in runs), "recorded": sum(r["recorded"] for r in runs),
           "failed": sum(r["failed"] for r in runs), "bytes": sum(r["bytes"] for r in runs),
           "stored": stored, "worker_rss": rss}
    run["events_per_s"] = round(run["recorded"] / seconds)
    log(f"  p10 ours, {uploads} upload{'s at once' if uploads > 1 else ''}: "
        f"{run['events_per_s']:,} events/s ({run['recorded']:,} recorded, "
        f"{run['failed']} failed, in {run['seconds']} s)")
    return run


def measure_memory(kind: str, sizes_mb: list[int]) -> list[dict[str, Any]]:
    """Each upload size to a fresh server: the serving worker's peak RSS after it."""
    clinic_id = CLINICS[0]
    found = []
    for megabytes in sizes_mb:
        url = fresh_store(kind, "p10mem")
        tokens = register(url, [clinic_id])
        with Server("traction", database_url=url, workers=1,
                    label=f"p10-{kind}-memory-{megabytes}") as ours:
            before = ours.rss()
            run = upload(ours.port, clinic_id, tokens["writers"][clinic_id],
                         lines(None, limit_bytes=megabytes * 1024 * 1024, seed=megabytes))
            after = ours.rss()
        drop_store(kind, "p10mem")
        peak = max(w["peak_rss_mb"] for w in after["workers"])
        log(f"  p10 memory: {megabytes} MB upload ({run['recorded']:,} events, "
            f"{run['events_per_s']:,} events/s): worker peak RSS {peak:.1f} MB "
            f"(at start {max(w['peak_rss_mb'] for w in before['workers']):.1f} MB)")
        found.append({"upload_mb": megabytes, "bytes": run["bytes"], "lines": run["lines"],
                      "recorded": run["recorded"], "seconds": run["seconds"],
                      "peak_rss_mb": round(peak, 1),
                      "peak_rss_mb_at_start": round(max(
                          w["peak_rss_mb"] for w in before["workers"]), 1)})
    return found


MB = 1024 * 1024
#: How often the 1 GB case reads the worker's memory from /proc.
SAMPLE_SECONDS = 1.0


def run_gigabyte(kind: str, megabytes: int = 1024) -> dict[str, Any]:
    """One upload of `megabytes` MB (1 GB by default) to a fresh one-worker server,
    generated as it is sent (neither side holds it), with the worker's RSS and
    peak RSS (VmRSS, VmHWM) read from /proc every SAMPLE_SECONDS while it goes.
    Every line is a new event (the mix of `lines`: programmes of 60 events,
    1,000 at a time), so each goes the whole way: parse, validate, run the
    rules, seal, chain, commit, answer."""
    clinic_id = CLINICS[0]
    log(f"P10 {megabytes:,} MB upload on {kind}: the worker's memory over time")
    url = fresh_store(kind, "p10gb")
    tokens = register(url, [clinic_id])
    sent, answered = [0], [0]
    samples: list[dict[str, Any]] = []
    stop = threading.Event()

    def counted() -> Iterator[bytes]:
        for line in lines(None, limit_bytes=megabytes * MB, seed=megabytes):
            sent[0] += len(line)
            yield line

    try:
        with Server("traction", database_url=url, workers=1,
                    label=f"p10-{kind}-gigabyte") as ours:
            (pid,) = ours.worker_pids()
            began = time.perf_counter()

            def take_sample() -> None:
                status = proc_status(pid)
                samples.append({"seconds": round(time.perf_counter() - began, 1),
                                "sent_mb": round(sent[0] / MB, 1),
                                "answered_lines": answered[0],
                                "rss_mb": round(status.get("VmRSS", 0) / 1024, 1),
                                "peak_rss_mb": round(status.get("VmHWM", 0) / 1024, 1)})

            def sample() -> None:
                while True:
                    take_sample()
                    if stop.wait(SAMPLE_SECONDS):
                        return

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                run = upload(ours.port, clinic_id, tokens["writers"][clinic_id], counted(),
                             answered)
            finally:
                stop.set()
                sampler.join()
            take_sample()  # the end
            run["stored"] = store_head(url)
    finally:
        drop_store(kind, "p10gb")

    def at(fraction: float) -> dict[str, Any]:
        """The first sample once `fraction` of the upload's lines had been answered."""
        return next(s for s in samples if s["answered_lines"] >= fraction * run["lines"])

    start, tenth, middle, end = samples[0], at(0.1), at(0.5), samples[-1]
    # Halfway every per-process cache is full (the keyring's KEYS_KEPT keys are
    # 20,000 programmes, 1.2 million lines of this mix): from there on, memory
    # that grew would be the upload's.
    growth = end["peak_rss_mb"] / middle["peak_rss_mb"]
    passes = (run["failed"] == 0 and run["complete"] and run["stored"] == run["recorded"]
              and growth <= 1.2)
    result = {
        "benchmark": "P10 bulk NDJSON ingest, 1 GB upload", "store": kind,
        "measured_at": now_iso(), "machine": machine(), "workers": 1, "status": "ok",
        "load": f"one upload of {sent[0] / MB:,.0f} MB ({run['lines']:,} lines), generated as "
                f"it is sent, chunked, the answer read as it is sent; every line a new event "
                f"of programmes {EVENTS_PER_PROGRAMME} events long, {INTERLEAVED:,} at a time",
        "upload": run, "events_per_s": run["events_per_s"],
        "mb_per_s": round(sent[0] / MB / run["seconds"], 2),
        "peak_rss_mb": {"start": start["peak_rss_mb"], "tenth": tenth["peak_rss_mb"],
                        "middle": middle["peak_rss_mb"], "end": end["peak_rss_mb"]},
        "memory_growth": round(growth, 3),
        "samples": samples,
        "bars": {"memory_growth_max": 1.2}, "passes": passes,
        "notes": ["memory_growth: peak RSS at the end / peak RSS once half of the upload's "
                  "lines were answered (every per-process cache is full by then: 1,000 "
                  "programmes, 20,000 data keys, owners and clinic positions)"],
        "reproduce": f"python -m bench.bulk --store {kind} --gigabyte",
    }
    log(f"  p10 {megabytes:,} MB: {run['events_per_s']:,} events/s, {result['mb_per_s']} MB/s "
        f"in {run['seconds']} s; worker peak RSS {start['peak_rss_mb']} MB at the start, "
        f"{tenth['peak_rss_mb']} MB at a tenth, {middle['peak_rss_mb']} MB halfway, "
        f"{end['peak_rss_mb']} MB at the end")
    write_result(f"p10-gigabyte-{kind}", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="fewer lines, smaller uploads")
    parser.add_argument("--lines", type=int)
    parser.add_argument("--memory-mb", help="comma-separated upload sizes in MB")
    parser.add_argument("--gigabyte", nargs="?", type=int, const=1024, metavar="MB",
                        help="only the 1 GB upload (or one of MB), its worker's memory "
                             "sampled over time: bench/results/p10-gigabyte-<store>.json")
    args = parser.parse_args(argv)
    kind = check_store_kind(args.store)
    if args.gigabyte:
        found = run_gigabyte(kind, args.gigabyte)
        print(f"p10 {args.gigabyte} MB {kind}: memory growth {found['memory_growth']} "
              f"passes {found['passes']}")
        return
    timing = Timing.of(args.quick)
    count = args.lines or (20_000 if args.quick else 100_000)
    sizes = ([int(s) for s in args.memory_mb.split(",")] if args.memory_mb
             else [32, 96] if args.quick else [64, 1024])
    result = run_p10(kind, timing, count, sizes)
    print(f"p10 {kind}: ratio {result['ratio']} ({AT_ONCE} uploads at once; one upload "
          f"{result['one_upload']['ratio']}) memory growth {result['memory_growth']} "
          f"passes {result['passes']}")


if __name__ == "__main__":
    main()
