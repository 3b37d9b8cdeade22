"""BENCHMARKS.md from the JSON in bench/results/: one table, both stores.

    python -m bench.report      # rewrite BENCHMARKS.md (and SCALING.md's generated
                                # capacity tables, bench/capacity.py) from the latest results
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import capacity
from bench.common import RESULTS, ROOT, STORE_KINDS, machine, now_iso, read_result

STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{text}{unit}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _cpu_ratio(reference: dict[str, Any], measured: dict[str, Any]) -> str:
    """Reference's CPU per request over ours: the cost ratio, robust to a busy machine."""
    a, b = reference.get("cpu_ms_per_request"), measured.get("cpu_ms_per_request")
    return f" (CPU {a / b:.2f})" if a and b else ""


def _cpu(figures: dict[str, Any]) -> str:
    """The workers' CPU per request, when measured."""
    value = figures.get("cpu_ms_per_request")
    return "" if value is None else f" ({value:.1f} ms CPU/req)"


def _verdict(result: dict[str, Any] | None) -> str:
    if result is None:
        return "not run"
    if result.get("passes") is True:
        return "**pass**"
    if result.get("passes") is False:
        return "**FAIL**"
    return result.get("status", "–")


def _rebuild(kind: str) -> dict[str, Any] | None:
    """bench/rebuild.py's result for this store: 1,000,000 events if there, else the largest."""
    found = sorted(RESULTS.glob(f"rebuild-{kind}-*.json"),
                   key=lambda p: int(p.stem.rsplit("-", 1)[1]) if p.stem.rsplit("-", 1)[1]
                   .isdigit() else 0)
    return json.loads(found[-1].read_text()) if found else None


def rows_for(kind: str) -> list[list[str]]:
    store = STORE_NAMES[kind]
    rows: list[list[str]] = []
    r = read_result(f"p1-{kind}")
    if r and r.get("ours"):
        rows.append(["P1", "single-event POST, wrk -t2 -c32", store,
                     _n(r["ours"]["requests_per_s"], " req/s") + _cpu(r["ours"]),
                     _n(r["baseline"]["requests_per_s"], " req/s") + _cpu(r["baseline"]),
                     _ratio(r["ratio"]) + _cpu_ratio(r["baseline"], r["ours"]),
                     _ms(r["ours"]["p99_ms"]) + f" (baseline {_ms(r['baseline']['p99_ms'])})",
                     "≥ 0.5; p99 ≤ 50 ms", _verdict(r)])
    else:
        rows.append(["P1", "single-event POST", store, "", "", "", "", "≥ 0.5; p99 ≤ 50 ms",
                     _verdict(r)])
    r = read_result(f"p2-{kind}")
    if r and r.get("ours"):
        rows.append(["P2", "100-event batch POSTs, wrk -t2 -c4", store,
                     _n(r["ours"]["events_per_s"], " events/s"),
                     _n(r["baseline"]["events_per_s"], " events/s (library alone)"),
                     _ratio(r["ratio"]), _ms(r["ours"]["p99_ms"]),
                     "≥ 0.5" + ("; ≥ 5,000 events/s" if kind == "postgres" else ""),
                     _verdict(r)])
    else:
        rows.append(["P2", "100-event batch POSTs", store, "", "", "", "", "≥ 0.5", _verdict(r)])
    r = _rebuild(kind)
    if r:
        rows.append(["P3", f"projection rebuild, {r['events']:,} events (bench/rebuild.py)",
                     store, _n(r["rebuild_events_per_s"], " events/s"),
                     _n(r["baseline_events_per_s"], " events/s (read + decode)")
                     + (f"; stricter: read and decoded as the rebuild does "
                        f"{r['lean_baseline_events_per_s']:,} events/s, ratio "
                        f"{r['ratio_to_lean_baseline']:.2f}"
                        if "lean_baseline_events_per_s" in r else ""),
                     _ratio(r["ratio"]), "",
                     "≥ 0.5" + ("; ≥ 20,000 events/s" if kind == "sqlite" else ""),
                     _verdict(r)])
    else:
        rows.append(["P3", "projection rebuild", store, "", "", "", "", "≥ 0.5", "not run"])
    r = read_result(f"p4-{kind}")
    if r and r.get("ours"):
        rows.append(["P4", f"dashboard + summary GETs, {r['events_stored']:,} events, "
                           "wrk -t2 -c8", store,
                     _n(r["ours"]["requests_per_s"], " req/s") + _cpu(r["ours"]),
                     _n(r["baseline"]["requests_per_s"], " req/s") + _cpu(r["baseline"]),
                     _ratio(r["ratio"]) + _cpu_ratio(r["baseline"], r["ours"]),
                     _ms(r["ours"]["p99_ms"]) + f" (baseline {_ms(r['baseline']['p99_ms'])})",
                     "≥ 0.7; p99 ≤ 10 ms", _verdict(r)])
    else:
        rows.append(["P4", "dashboard + summary GETs, 1,000,000 events", store, "", "", "", "",
                     "≥ 0.7; p99 ≤ 10 ms", _verdict(r)])
    r = read_result(f"p5-{kind}")
    if r and r.get("history"):
        for name, what in (("history", "GET history, 200 events"),
                           ("version", "GET ?version=N, 200-event programme")):
            part = r[name]
            rows.append(["P5", f"{what}, wrk -t2 -c8", store,
                         _n(part["ours"]["requests_per_s"], " req/s") + _cpu(part["ours"]),
                         _n(part["baseline"]["requests_per_s"], " req/s")
                         + _cpu(part["baseline"]),
                         _ratio(part["ratio"]) + _cpu_ratio(part["baseline"], part["ours"]),
                         _ms(part["p99_ms"])
                         + f" (baseline {_ms(part['baseline']['p99_ms'])})",
                         "p99 ≤ 20 ms, or ≤ 1.5 × the baseline's p99",
                         "**pass**" if part.get("passes", part["p99_ms"] <= 20)
                         else "**FAIL**"])
    else:
        rows.append(["P5", "history and ?version=", store, "", "", "", "", "p99 ≤ 20 ms",
                     _verdict(r)])
    r = read_result(f"p6-{kind}")
    if r and r.get("lag_ms"):
        ingest = r.get("ingest") or {}
        latency = ingest.get("latency_ms") or {}
        rows.append(["P6", f"projection lag, record → read model, {r['probes']} probes, "
                           f"while ingest runs at {_n(ingest.get('requests_per_s'))} req/s "
                           f"(target {_n(r['ingest_rate_target'])}; ingest p99 "
                           f"{_ms(latency.get('p99'))})", store,
                     f"lag p50 {_ms(r['lag_ms']['p50'])}", "", "", _ms(r["lag_ms"]["p99"]),
                     "p99 ≤ 250 ms", _verdict(r) + (
                         f" ({len(r['probe_problems'])} probe problems, first: "
                         f"{r['probe_problems'][0]})" if r.get("probe_problems") else "")])
    elif r and str(r.get("status", "")).startswith("error"):
        rows.append(["P6", "projection lag under ingest", store, "", "", "", "",
                     "p99 ≤ 250 ms", "**FAIL**: " + r["status"]])
    else:
        rows.append(["P6", "projection lag under ingest", store, "", "", "", "",
                     "p99 ≤ 250 ms", _verdict(r)])
    r = read_result(f"p7-{kind}")
    if r and r.get("p1"):
        p1, p4 = r["p1"], r["p4"]
        rows.append(["P7", "P1 on 1,000,000 vs 10,000 events", store,
                     _n(p1["big"]["requests_per_s"], " req/s") + _cpu(p1["big"]),
                     _n(p1["small"]["requests_per_s"], " req/s (small store)")
                     + _cpu(p1["small"]),
                     _ratio(p1["ratio"]) + _cpu_ratio(p1["small"], p1["big"]),
                     _ms(p1["big"]["p99_ms"]), "≥ 0.9",
                     "**pass**" if (p1["ratio"] or 0) >= 0.9 else "**FAIL**"])
        if "ratio" in p4:
            rows.append(["P7", "P4 on 1,000,000 vs 10,000 events", store,
                         _n(p4["big"]["requests_per_s"], " req/s") + _cpu(p4["big"]),
                         _n(p4["small"]["requests_per_s"], " req/s (small store)")
                         + _cpu(p4["small"]),
                         _ratio(p4["ratio"]) + _cpu_ratio(p4["small"], p4["big"]),
                         _ms(p4["big"]["p99_ms"]), "≥ 0.9",
                         "**pass**" if (p4["ratio"] or 0) >= 0.9 else "**FAIL**"])
        else:
            rows.append(["P7", "P4 on 1,000,000 vs 10,000 events", store, "", "", "", "",
                         "≥ 0.9", p4.get("status", "–")])
    else:
        rows.append(["P7", "growth 1,000,000 vs 10,000 events", store, "", "", "", "", "≥ 0.9",
                     _verdict(r)])
    r = read_result(f"p8-{kind}")
    if r and r.get("max_rss_mb") is not None:
        rows.append(["P8", "API worker RSS after P4 (VmRSS, largest worker)", store,
                     _n(r["max_rss_mb"], " MB"), "", "", "", "≤ 150 MB", _verdict(r)])
    else:
        rows.append(["P8", "API worker RSS after P4", store, "", "", "", "", "≤ 150 MB",
                     _verdict(r)])
    rebuild_rss = (r or {}).get("rebuild_peak_rss") or {}
    if "growth" in rebuild_rss:
        rows.append(["P8", "rebuild peak RSS, 1,000,000 vs 100,000 events", store,
                     _n(rebuild_rss["peak_rss_mb_1m"], " MB"),
                     _n(rebuild_rss["peak_rss_mb_100k"], " MB (100,000)"),
                     _ratio(rebuild_rss["growth"]), "", "≤ 1.2×",
                     "**pass**" if rebuild_rss["passes"] else "**FAIL**"])
    return rows + under_load_rows(kind)


def measured_on(row_id: str, kind: str) -> str:
    """The day a row's result was measured, and how long each of its runs was: the
    rows are not all from the run this file's header describes."""
    r = _rebuild(kind) if row_id == "P3" else read_result(f"{row_id.lower()}-{kind}")
    if not r or not r.get("measured_at"):
        return "–"
    timing = r.get("timing") or {}
    length = (f", {timing['rounds']} x {timing['duration_s']} s"
              if timing.get("rounds") and timing.get("duration_s") else "")
    return f"{r['measured_at'][:10]}{length}"


def _gigabyte(r: dict[str, Any] | None) -> str:
    """The 1 GB upload's figures (bench.bulk --gigabyte), for P10's memory column."""
    if not r or r.get("status") != "ok":
        return ""
    peak = r["peak_rss_mb"]
    return (f"; {r['upload']['bytes'] / 1024 ** 3:.2f} GB upload "
            f"({_n(r['events_per_s'], ' events/s')}): peak RSS {_n(peak['start'], ' MB')} "
            f"at the start, {_n(peak['tenth'], ' MB')} at a tenth, "
            f"{_n(peak['middle'], ' MB')} halfway, {_n(peak['end'], ' MB')} at the end "
            f"({'pass' if r.get('passes') else 'FAIL'}, measured {r['measured_at'][:10]})")

def under_load_rows(kind: str) -> list[list[str]]:
    """P9-P12: retry storms, bulk ingest, conditional reads, CPU per POST."""
    store = STORE_NAMES[kind]
    rows: list[list[str]] = []
    r = read_result(f"p9-{kind}")
    if r and r.get("plain"):
        for case, what in (("pairs", "every event posted twice at once"),
                           ("random", "10 % random duplicates")):
            part = r[case]
            rows.append(["P9", f"retry storm: {what}, wrk -t2 -c32", store,
                         _n(part["requests_per_s"], " req/s") + _cpu(part),
                         _n(r["plain"]["requests_per_s"], " req/s (no duplicates)")
                         + _cpu(r["plain"]),
                         _ratio(part["ratio"]) + _cpu_ratio(r["plain"], part),
                         _ms(part["p99_ms"]) + f"; 5xx {part['checks']['5xx']}, stored once: "
                         + ("yes" if part["checks"]["stored_once"] else "NO"),
                         "≥ 0.8; p99 ≤ 250 ms; no 5xx; each event once",
                         "**pass**" if part.get("passes") else "**FAIL**"])
    else:
        rows.append(["P9", "retry storm", store, "", "", "", "", "≥ 0.8; p99 ≤ 250 ms",
                     _verdict(r)])
    r = read_result(f"p10-{kind}")
    if r and r.get("ours"):
        memory = r.get("memory") or []
        sizes = ", ".join(f"{m['upload_mb']} MB upload: {_n(m['peak_rss_mb'], ' MB')} peak RSS"
                          for m in memory)
        runs = r["ours"].get("runs") or [{}]
        lines = _n(runs[0].get("lines", 20_000), "")
        one = r.get("one_upload")
        uploads = r["ours"].get("uploads", 1)
        rows.append(["P10", f"bulk NDJSON, {lines} lines over 1,000 programmes"
                     + (f", {uploads} uploads at once (each its own programmes)"
                        if uploads > 1 else ", one upload"),
                     store, _n(r["ours"]["events_per_s"], " events/s")
                     + (f"; one upload of them all: {_n(one['events_per_s'], ' events/s')}"
                        if one else ""),
                     _n(r["baseline"]["events_per_s"], " events/s (library's batched save)"),
                     _ratio(r["ratio"]) + (f" (one upload: {_ratio(one['ratio'])})"
                                           if one else ""),
                     f"memory growth {_ratio(r.get('memory_growth'))}× ({sizes})"
                     + _gigabyte(read_result(f"p10-gigabyte-{kind}")),
                     "≥ 0.5; memory ≤ 1.2× as the upload grows", _verdict(r)])
    else:
        rows.append(["P10", "bulk NDJSON", store, "", "", "", "", "≥ 0.5", _verdict(r)])
    r = read_result(f"p11-{kind}")
    if r and r.get("ours"):
        rows.append(["P11", "P4 reads, 80 % revalidating (304), wrk -t2 -c8",
                     store, _n(r["ours"]["requests_per_s"], " req/s") + _cpu(r["ours"]),
                     _n(r["baseline"]["requests_per_s"], " req/s (trivial app, full bodies)")
                     + _cpu(r["baseline"]),
                     _ratio(r["ratio"]) + _cpu_ratio(r["baseline"], r["ours"]),
                     f"{r.get('cpu_ms_per_304', 0):.2f} ms CPU per 304",
                     "≥ 0.7; ≤ 0.3 ms CPU per 304", _verdict(r)])
    else:
        rows.append(["P11", "conditional reads", store, "", "", "", "", "≥ 0.7", _verdict(r)])
    r = read_result(f"p12-{kind}")
    if r and r.get("ours"):
        rows.append(["P12", "CPU per single-event POST (P1's load)", store,
                     f"{r['cpu_ms_per_request']:.2f} ms CPU/req",
                     f"{r['baseline_cpu_ms_per_request']:.2f} ms CPU/req (trivial app)",
                     "", _ms(r["ours"]["p99_ms"]), "≤ 1.2 ms CPU per request", _verdict(r)])
    else:
        rows.append(["P12", "CPU per POST", store, "", "", "", "", "≤ 1.2 ms", _verdict(r)])
    return rows


def datasets() -> list[str]:
    lines = []
    for path in sorted((ROOT / "bench" / "data").glob("*-s*.json")):
        meta = json.loads(path.read_text())
        gen = meta.get("generation", {})
        lines.append(f"- {STORE_NAMES.get(meta.get('store', ''), meta.get('store'))}: "
                     f"{meta.get('events', 0):,} events, {meta.get('programmes', 0):,} "
                     f"programmes, {len(meta.get('clinics', []))} clinics — generated in "
                     f"{gen.get('seconds')} s ({_n(gen.get('events_per_s'))} events/s, "
                     f"{gen.get('events_per_save')} events per save) on "
                     f"{meta.get('generated_at')}")
    return lines


def markdown(run: dict[str, Any] | None = None) -> str:
    run = run or read_result("run") or {}
    info = run.get("machine") or machine()
    header = ["id", "what", "store", "ours", "baseline (same run)", "ratio", "p99",
              "bar", "result", "measured"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind in STORE_KINDS:
        for row in rows_for(kind):
            row = [*row, measured_on(row[0], kind)]
            table.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    lines = [
        "# Benchmarks",
        "",
        "The performance bars P1–P12 (each row below names its bar), each measured as a ratio "
        "against a baseline run in the same session on the same machine (or as a latency "
        "percentile from the load tool). Generated by `python -m bench.report` from "
        "`bench/results/*.json`; do not edit by hand. The header below describes the "
        "latest `bench.run_all`; the `measured` column says when each row's result was "
        "measured (and each run's length): rows that run did not cover keep an earlier "
        "run's figures.",
        "",
        f"- **Date**: {run.get('finished_at') or now_iso()}",
        f"- **Machine**: `nproc` {info.get('nproc')}, `uname -m` {info.get('arch')}, CPU "
        f"\"{info.get('cpu')}\", {info.get('memory_gb')} GB RAM, kernel {info.get('kernel')}, "
        f"Python {info.get('python')}; commit {info.get('git_commit')} (plus uncommitted work)",
        f"- **Stores**: SQLite (file under bench/data/stores/) and PostgreSQL "
        f"({run.get('postgres_version', '15')} on 127.0.0.1:5432, databases "
        "`traction_bench_*`)",
        f"- **Mode**: {run.get('mode', '?')} — {run.get('timing_text', '')}",
        f"- **Load on the machine** (1-minute load average, other work shares these "
        f"cores): {run.get('loadavg_start', '?')} at start, {run.get('loadavg_end', '?')} "
        "at the end",
        f"- **Reproduce**: `{run.get('command', 'make bench')}` (`make bench` runs it all; "
        "`python -m bench.run_all --quick` for short runs; needs `wrk`: "
        "`apt-get install -y wrk`). Each benchmark alone: "
        "`python -m bench.ingest|reads|lag|growth|storm|bulk --store sqlite|postgres "
        "[--quick]`, "
        "`python -m bench.rebuild --store ...`; the stores: `python -m bench.dataset "
        "--events 1000000 --store sqlite|postgres`; the profile: "
        "`python -m bench.profile_p1 --store sqlite|postgres` (wall time under load, py-spy) "
        "and `python -m bench.profile_cpu --store sqlite|postgres` (CPU by layer).",
        f"- **Took**: {run.get('seconds', '?')} s",
        "",
        *table,
        "",
        "Servers: `traction serve --no-projections` (P6: with projections) and the baseline "
        "app (`bench/baseline_app.py`) under the same `deploy/gunicorn.conf.py` with 2 workers, "
        "one process each, on 127.0.0.1; load from `wrk` with `bench/lua/load.lua` in its own "
        "process on the same 2 cores. Baseline and ours alternate round by round and the "
        "figures are medians over rounds. Details of every run (all percentiles, errors, "
        "RSS per worker, body sizes) are in `bench/results/<id>-<store>.json`. "
        "\"ms CPU/req\" is the CPU time (user + system, from /proc) the gunicorn workers "
        "spent per request: it says how much of a gap is cost and how much is waiting. "
        "Under wrk's keep-alive connections the gthread workers do not always share the "
        "connections (the baseline often serves all of them from one worker): "
        "`worker_cpu_share` in the JSON shows each worker's share of a core per run. "
        "\"(CPU x)\" after a ratio is the same ratio in CPU per request (baseline's or small "
        "store's over ours): the cost ratio, which a busy machine or an idle worker "
        "disturbs far less than requests/s; the bars are judged on requests/s.",
        "",
    ]
    notes = run.get("notes") or []
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    data = datasets()
    if data:
        lines += ["## Generated stores (bench/dataset.py)", "", *data, ""]
    lines += hosts_section()
    lines += render_section()
    lines += cpu_profile_section()
    lines += encryption_section()
    lines += EXPLANATIONS
    for kind in STORE_KINDS:
        lines += profile_section(kind)
    lines += tenancy_section()
    lines += written_sections()
    return "\n".join(lines)


def tenancy_section() -> list[str]:
    """bench/tenancy.py: a foreign programme answered in the time of a missing one."""
    lines: list[str] = []
    for kind in STORE_KINDS:
        r = read_result(f"tenancy-{kind}")
        if not r:
            continue
        if not lines:
            lines = ["## A foreign programme answers as a missing one, in time too "
                     "(bench/tenancy.py)", "",
                     f"`python -m bench.tenancy --store sqlite|postgres`: a "
                     f"{r['events']:,}-event programme of clinic B, read or written by "
                     f"clinic A, against a random id; medians over {r['rounds']} "
                     f"alternating rounds. Bar: medians within {r['bar_ms']} ms and the "
                     "same statuses.", "",
                     "| store | path | foreign (median) | missing (median) | difference "
                     "| statuses | result |", "|---|---|---|---|---|---|---|"]
        for path, p in r["paths"].items():
            lines.append(f"| {STORE_NAMES[kind]} | {path} | {p['foreign_median_ms']:.3f} ms "
                         f"| {p['missing_median_ms']:.3f} ms | {p['difference_ms']:+.3f} ms "
                         f"| {p['statuses']['foreign']} / {p['statuses']['missing']} "
                         f"| {'**pass**' if p['pass'] else '**FAIL**'} |")
    if lines:
        lines += ["", f"Measured {r['date']} (commit {r['machine']['git_commit']}).", ""]
    return lines


def written_sections() -> list[str]:
    """Sections a benchmark wrote as markdown of its own (bench/results/*.md), as they are:
    benchmarks run apart from bench.run_all (e.g. bench/fhir_export.py) put their tables there."""
    lines: list[str] = []
    for path in sorted(RESULTS.glob("*.md")):
        lines += ["", *path.read_text().rstrip().splitlines(), ""]
    return lines


def render_section() -> list[str]:
    """bench/render.py: what rendering the dashboards costs per written batch."""
    r = read_result("render")
    if not r:
        return []
    return [
        "## Rendering the dashboards per written batch (bench/render.py)",
        "",
        f"`{r['reproduce']}` on {r['measured_at']} (load average {r['load_average_1m']}): "
        f"{r['programmes']:,} programmes in {r['clinics']} clinics. The projection renders a "
        "clinic's dashboard when a batch changes it and the network's when any clinic "
        "changes — every cohort's Kaplan–Meier estimate, intervals and comparisons — so "
        "reads only send stored JSON (P4); a rebuild renders once, at its end (P3).",
        "",
        "| what | CPU per render (median) |",
        "|---|---|",
        f"| one clinic's dashboard | {r['clinic_render_cpu_ms']:.1f} ms |",
        f"| the network's dashboard (its cohorts from every clinic's times) | "
        f"{r['network_render_cpu_ms']:.1f} ms |",
        f"| the same, no cohort's times changed since the last render (estimates "
        f"remembered) | {r.get('network_render_unchanged_times_cpu_ms', 0):.1f} ms |",
        f"| baseline, same run: {r['baseline']} | {r['baseline_cpu_ms']:.2f} ms |",
        "",
        f"Bodies: a clinic dashboard {r['clinic_dashboard_bytes']:,} bytes; the network view "
        f"(every clinic's dashboard and the totals) {r['network_view_bytes']:,} bytes. Both "
        "are bounded by the number of clinics, settings and modalities and the 84 days of "
        "the curves, not by the number of programmes or events.",
        "",
    ]


def cpu_profile_section() -> list[str]:
    """bench/profile_cpu.py's findings: each benchmark request's CPU by layer."""
    lines: list[str] = []
    for kind in STORE_KINDS:
        profile = read_result(f"cpu-profile-{kind}")
        if not profile:
            continue
        if not lines:
            lines = ["## Where each request's CPU goes, by layer (cProfile)", "",
                     "`python -m bench.profile_cpu --store sqlite|postgres`: the real app in "
                     "one process, requests passed to it as gunicorn would (no HTTP server, "
                     "so gunicorn's own share is not here), CPU per request measured without "
                     "the profiler, then shares of the profiled time by the layer each "
                     "function belongs to (a built-in counts for the layer that called it). "
                     "The bars that fail are CPU-bound: these say where that CPU goes.", "",
                     "| store | request | ms CPU/req (in process) | where the CPU goes |",
                     "|---|---|---|---|"]
        for scenario in profile["scenarios"]:
            layers = ", ".join(f"{row['layer']} {row['share_pct']:.0f} %"
                               for row in scenario["layers"] if row["share_pct"] >= 3)
            lines.append(f"| {STORE_NAMES[kind]} | {scenario['scenario']} | "
                         f"{scenario['cpu_ms_per_request']:.2f} | {layers} |")
    return [*lines, ""] if lines else []


#: Why the bars that fail do, and what design would meet them (see the tables above).
EXPLANATIONS = [
    "## Why the failing bars fail, and what would meet them", "",
    "- **P1 (single-event POST)**: CPU-bound. Two workers on two shared cores use "
    "about 1.7 cores between them, so requests/s is the inverse of CPU per request, "
    "several times the trivial app's. No single layer dominates (the table above): "
    "Flask and Werkzeug, validation, our own code (command lock, idempotency digest, "
    "ledger rows, integrity chain), the driver and commit, the fast-forward read each "
    "take a tenth to a fifth. Removed already: a deep copy of the aggregate per "
    "command, a schema instance per request, eight wrapper layers per view, the "
    "library's Protocol checks per event and per save, one transaction per request "
    "(group commit), nine pipelined statements with bound arrays per PostgreSQL save "
    "(now two round trips of the simple protocol: lock, head and checks; rows and "
    "commit), marshmallow's generic load (a compiled fast path that answers as "
    "marshmallow does), the query after each save for the receipt's clinic "
    "positions (the save numbers them itself, under the write lock, on both stores), "
    "SQLite's BEGIN and ROLLBACK around the fast-forward read, SQLite's statements "
    "parsed and planned again on every run (the library opens its connections with "
    "a cache of one prepared statement; ours keep 128: "
    "service/storage/sqlite_connections.py). "
    "Reaching 0.5 of a trivial app would need about a third of "
    "today's CPU per request: the request handling of many events done in one pass "
    "(the bulk endpoint, P10), or the write path out of Python.",
    "- **P2 (100-event batches), SQLite**: the baseline is `Application.save` alone; "
    "our request validates every envelope, runs the aggregate's rules and writes the "
    "ledger. PostgreSQL meets the ratio because the library alone is slower there.",
    "- **P4 (dashboard and summary reads)**: a read the worker has answered before, "
    "while the projection has not moved, is answered from memory (the projection's "
    "position re-read at most every TRACTION_READ_STALENESS); what remains is Flask "
    "and Werkzeug's request handling, the access check and the request log, against "
    "a trivial app that has only the first. A polling client that revalidates "
    "(If-None-Match, P11) gets a 304 with no body; a 304 the worker gave before, to "
    "the same token for the same URL and If-None-Match while the body is unchanged, "
    "is answered before Flask (service/http/revalidations.py: the token still "
    "checked in full, the request log and metrics kept), so what remains of a "
    "repeated 304 is gunicorn's request handling, the token check, the access line "
    "and the metrics.",
    "- **P5 (history, `?version=`)**: each version's body is encoded once per worker "
    "and kept (it cannot change), with its digest as the ETag; a replay to "
    "`?version=N` starts from the nearest kept state (every 50th version), so at "
    "most 49 events are read and applied once the programme has been replayed that "
    "far in the worker. The first replay of a programme in a worker still reads "
    "its events up to N: P5's repeated reads mostly measure the kept bodies. "
    "Each worker freezes what it made while loading the app (`gc.freeze()` in "
    "deploy/gunicorn.conf.py), so the collector's full passes no longer walk it: "
    "on 2026-12-06 that took P5's history p99 on PostgreSQL from 24-44 ms to "
    "7-9 ms in alternating runs.",
    "- **The p99 halves of P4 and P5** depend on the machine as much as on the "
    "service: the p99 column shows the trivial baseline's own p99 under the same "
    "load, and where that is near or above the bar (P4's 10 ms on a loaded machine), "
    "no Flask app under gunicorn on these two shared cores would meet it (P5's bar "
    "allows 1.5 x the baseline's p99 there).",
    "- **P2's 5,000 events/s floor and P7**, where they fail, move with the machine: "
    "the library alone (P2's baseline) has varied by half between runs on this kind "
    "of machine, and P7's CPU-per-request ratio (in brackets) is the figure that "
    "says whether a cost grows with the store.",
    "- **P9 (retry storm)**: a retry's cost is what decides it. Since 2026-12-06 "
    "(night) an exact retry that reaches the worker that recorded the original is "
    "answered from that worker's receipt (domain/recent_receipts.py, the last "
    "10,000 event ids of single posts), with no statement; on PostgreSQL, "
    "alternated with the commit before, pairs went from 0.74/0.82 to 1.09/0.89 "
    "and random duplicates from 0.81/0.98 to 1.20/1.02. A retry that reaches "
    "another worker is found out by the read that brings the programme up to date "
    "(it also asks whether the post's first event id is recorded), so its commands "
    "are not run and its programme stays in the cache; the receipt is read back "
    "from the saves it repeats, not from all of the programme's entries. Before, "
    "the store refused the retry's save and the programme was dropped from the "
    "cache, so each retry to it read all of its events again: 8.2 ms (SQLite) and "
    "8.5 ms (PostgreSQL) of CPU for a retry to a 400-event programme, now 0.43 and "
    "0.91 ms (a new post: 0.7 and 0.8). The server's throughput itself varies by a "
    "third between rounds on PostgreSQL here (the plain run: 699 and 939 requests/s "
    "in one run), so read a ratio with its two rounds.",
    "- **P10 (bulk)** is two loads in each round, each on a fresh store and server: "
    "two uploads at once, each with its own 500 of the 1,000 programmes and half of "
    "the lines, one per worker (a sync split by programme, as the README advises; "
    "the service as it is deployed, as P2's four connections use both workers), on "
    "which the bar is read; and one upload of all the lines, which one worker "
    "records alone (its ratio in parentheses in the row). One upload is a CPU-bound "
    "pipeline in one process (parse, validate, run the rules, "
    "chain, write) with the library's batched save, which waits on the disk more "
    "than it computes: on a busy machine the ratio falls with the CPU the "
    "workers get. The worker's memory is the programme cache's (1,000 programmes, "
    "TRACTION_AGGREGATE_CACHE_SIZE): it stops growing once the cache is full. "
    "The 1 GB upload (`python -m bench.bulk --gigabyte`, about 3.3 million lines, "
    "every one a new event, generated as it is sent; not part of `run_all`) samples "
    "the worker's peak RSS from /proc every second: the figures in P10's row are "
    "its peak at the start, once a tenth, half and all of the lines were answered. "
    "`python -m bench.profile_bulk --store sqlite|postgres` measures the CPU and wall "
    "time per line in one process (no HTTP server), the figure to compare when "
    "working on this path. On 2026-12-06 a line cost 210-250 µs of CPU on SQLite "
    "in the morning and about 85-100 µs of the worker's CPU over HTTP by the "
    "evening: line validation halved (one strict decoder; orjson where it must "
    "agree with it; one generated loader per schema), events' JSON written by "
    "orjson, a chunk's ids, locks, owners and digests done once per chunk and keyed "
    "by ints or hex (a UUID hashes in Python), the library's events made and "
    "mapped without its generic per-call set-up (held to it by tests), the "
    "recorded-before look-up skipped after a chunk of new events and, when made, "
    "looked up by event id (it had read all of the clinic's entries), each "
    "programme's last version read by one index lookup, and SQLite given a 16 MB "
    "page cache while it writes (its default 2 MB spilled a chunk's index pages to "
    "the WAL twice over). PostgreSQL meets the bar (its baseline waits on the "
    "server more); on SQLite the ratio is at the bar, 0.40-0.59 from one round to "
    "the next, because the library's baseline does not wait and moves with the "
    "machine as much as we do. What remains per line is spread thin: SQLite's own "
    "work (two rows and five index entries per event, against the baseline's one "
    "and one; the commit's WAL writes) about a quarter, then the chain and "
    "content digests, JSON, the aggregate's rules. A thread reading the upload "
    "ahead of the writes was tried and did not pay on two shared cores. On "
    "2026-12-06 (afternoon) SQLite's commit of a chunk was half checkpoint: each "
    "chunk changes more than the 1,000 pages at which a commit copies the WAL back "
    "into the file itself. Checkpoints now run in a thread of the worker "
    "(service/storage/sqlite_checkpoints.py), outside the GIL and beside the next "
    "chunk's parsing: 17 to 9 µs of commit per line in one process, and 9.4-9.8k "
    "against 7.3-9.2k events/s over HTTP in 4 alternated rounds. The ledger's "
    "(programme_id, version) index, which repeats the events table's key, cost "
    "about 8 % more (measured by dropping it); since 2026-12-06 (night) migration "
    "0010 drops it on SQLite, and a programme's ledger rows are found by position "
    "through the events' key (each event's rowid is its position): in one process, "
    "alternated, a line cost 3-16 % less CPU without it, more as the store grows, "
    "and the full run's ratio went from 0.45 to 0.49. The table's SQLite row is a "
    "full run late that night on a quieter host, the code unchanged: 0.45 (ours "
    "16,079 and 17,372 events/s, the library's 38,355 and 37,718, against 13,359 "
    "and 27,840 in the 0.48 run): a quiet host speeds the baseline more than us. "
    "On 2026-12-06 (evening) PostgreSQL's screen of a chunk read each programme's "
    "last version by MAX ... GROUP BY over the chunk's programmes, a plan that "
    "followed the row estimates: 9 ms per chunk of 1,000 programmes on a 20,000-"
    "event store, 75 ms at 400,000 and 195 ms at 2 million (a parallel scan, or "
    "JIT compilation where the tables had no statistics), all of it under the "
    "table lock. One backward lookup in the events' key per programme takes 8-15 "
    "ms at every size; a 256 MB upload (830,000 events into a fresh store) went "
    "from 3,199 to 3,503 events/s. This machine's PostgreSQL runs with autovacuum "
    "off, so its stores never have statistics (SCALING.md says to keep it on). The "
    "same evening's full run measured memory over a 64 MB and a 1 GB upload: "
    "1.32 x on SQLite, from the data keys a worker keeps (20,000 at most) held as "
    "AESGCM objects of about 2.6 KB each; they are kept as their 32 bytes now "
    "(a 256 MB upload's peak RSS 189.9 -> 158.6 MB). On 2026-12-07 the two loads "
    "were measured side by side on a slower, noisier host (a ten-million-step Python "
    "loop took 0.86-1.55 s from one minute to the next; the library's baseline "
    "18-21k events/s on SQLite, against 38k the night before). SQLite, full run: "
    "two uploads at once 18,360 and 20,373 events/s, one upload 9,727 and 10,384 "
    "(1.9 times as many), the library 20,594 and 18,303; ratios 0.99 and 0.50. "
    "PostgreSQL, full run: two uploads at once 6,610 and 6,847, one upload 4,153 "
    "and 3,928 (1.7 times), the library 6,210 and 7,430; ratios 0.92 and 0.56 "
    "(its memory part 64 and 256 MB: a 1,024 MB one slows to about 1,100 events/s "
    "past two million events on this machine's PostgreSQL, which never has "
    "statistics, and did not finish in 40 minutes; the 1 GB case's own figures "
    "are in the row). An earlier run that hour, its memory part stopped: 0.93 "
    "and 0.56. "
    "Quick runs of one upload on SQLite the same hour gave 0.32, 0.56 and 0.64: "
    "one upload's ratio swings with the host, two uploads' stays well above the "
    "bar. Every line of every run was recorded once (tests/reliability/"
    "test_bulk_live.py sends uploads at once through gunicorn on both stores: of "
    "their own programmes, and the same lines twice).",
    "- **P12** is an absolute figure: read it with the trivial app's CPU per "
    "request in the same run, which says how much a busy machine inflates both. "
    "A single-event POST to a programme the worker holds costs three round trips "
    "on PostgreSQL (the fast-forward read; lock, head and checks; rows and commit). "
    "A programme the worker has not loaded yet costs more (its owner, all its "
    "events, its data key): with 1,000 programmes over two workers, a quick run "
    "(1 s warm-up, 5 s measured) still loads a third to nearly half of its requests' "
    "programmes for the first time, so its figure is higher than a long run's. "
    "`in_process_cpu_ms_per_request` in bench/results/p12-<store>.json (the same "
    "posts through the app in one process, no HTTP server, warm caches) is the "
    "path without gunicorn's share and without cold loads. Under P1's load a "
    "worker's eight request threads take turns at the GIL: each call that lets go "
    "of it (a socket, a database statement, a log write) hands it to a waiting "
    "thread, and on this virtual machine a context switch costs about 10 µs. On "
    "2026-12-06 (perf and /proc of the real workers) the kernel took about a "
    "third of the worker's CPU per POST, mostly in futex waits and wakes, at 17 "
    "voluntary and 6 involuntary switches per request (the trivial app: 4 and 2). "
    "Group commit now wakes each waiting save once, by its own lock, rather than "
    "every waiter after every write (17 → 14 switches, about −7 % CPU per POST, "
    "alternated). The figure moves by ±10 % from run to run with how busy the "
    "host is, the switches' cost most of all; 16 threads per worker instead of 8 "
    "was lower on PostgreSQL and higher on SQLite in alternated runs, so the "
    "default stays. Where the CPU of one post goes (2026-12-06, afternoon, one "
    "process, each piece timed alone): on SQLite 0.97 ms, of which the commit (the "
    "WAL's append and sync) 0.11-0.19, the two inserts 0.04, the screen and the "
    "ledger's head 0.025, the fast-forward read 0.05, the rest of the domain 0.1, "
    "the body's parsing and validation 0.1, Flask and our hooks 0.27 (the trivial "
    "app's whole request: 0.15); on PostgreSQL 1.2 ms, of which the fast-forward "
    "read 0.17 and the save's two round trips 0.40 (one psycopg query costs 45-75 "
    "µs of the worker's CPU here). Since 2026-12-06 (late evening) those three "
    "statements go through libpq's own calls and psycopg's C wait, past the cursor "
    "(service/storage/postgres_direct.py): about 40 µs a round trip instead of "
    "50-90, and in one process, alternated with the commit before, 1.01-1.17 "
    "against 1.20-1.38 ms per POST on a slow host (P12 over HTTP, alternated: "
    "1.23 / 1.31 against 1.38 / 1.49 ms, then 1.62-2.59 against 1.77-2.05 in three "
    "more pairs as the host slowed). Three full runs that night on a slow host "
    "gave 1.91, 2.07 and 2.34 ms (the trivial app 0.42-0.52 ms, our in-process "
    "figure 0.93-1.38): on a contended host our figure grows faster than the "
    "trivial app's, as every switch between threads and the database server "
    "costs more. The table's PostgreSQL row is the middle of three full runs "
    "later that night on a quieter host (1.13, 1.22, 1.29 ms; the trivial app "
    "0.27-0.29; in process 0.62-0.79), with two earlier the same hour at 1.27 "
    "and 1.09: at the bar, passing in two full runs of five. Per round the "
    "figure follows throughput (about 1.0 ms at 1,200 requests/s, 1.3-1.8 at "
    "600), and an A/A run of the same build alternated six times differed by up "
    "to 25 % per round and 2 % in the median. `python -m bench.ab --other PATH` "
    "runs such an alternated A/B between this checkout and another (each side "
    "served from its own checkout, as gunicorn's working directory, and its store "
    "made by its own code: with PYTHONPATH alone both sides run this checkout's "
    "code, which is how a first A/B that night read an A/A as -12 %). Measured "
    "then and left: saves "
    "average 1.5 per group commit under this load (so a save's two round trips "
    "are close to per-post costs); a GIL switch interval of 1 ms or 50 ms instead "
    "of the default 5 cost more CPU in every alternated round (6 of 6 each); the "
    "garbage collector takes 4-9 µs per post, the access line 11 µs, the "
    "library's pool checkout 5-6 µs (2 µs bare), twice per post. Since "
    "2026-12-06 (late night) a group of single-event saves (up to 64) is written "
    "by a function in the server (migration 0011: screened, numbered and chained "
    "as the two round trips did, held to them by tests/storage/test_save_function.py), "
    "so the save is one round trip: in one process a lone save cost the worker 87 "
    "against 195 µs of CPU and 0.41 against 0.78 ms of wall time, and a post "
    "0.62-0.69 against 0.70-0.96 ms. With one client posting one event at a time "
    "(wrk -c1, alternated, 4 rounds) the median latency was 1.68 against 2.63 ms "
    "and the CPU per request 1.19 against 1.74 ms. Under P1's load the difference "
    "was within the noise: medians of 1.20 against 1.24 ms (8 alternated rounds, "
    "6 lower) and 1.07 against 1.04 (8 more, 4 lower). From about a hundred saves "
    "the server's one call per save costs more wall time than the two round trips "
    "(a bulk chunk of a thousand: P10 quick 8,513 against 11,432 events/s), so "
    "larger groups keep them. The table's PostgreSQL row is the middle of three "
    "full runs after this change (0.98, 1.13, 0.98 ms; a fourth 0.91; the trivial "
    "app 0.26-0.27 ms; in process 0.49-0.51): the host had grown quieter again, and "
    "the commit before measured 0.96 and 1.05 in the same half hour (in process "
    "0.55-0.61), so at this speed of host both pass and most of the change from "
    "the row before (1.22) is the host's. P9 on PostgreSQL, measured again after "
    "it (refusals now made in the server): pairs 1.00, random duplicates 1.00 of "
    "the plain run, no 5xx, every event stored once. SQLite's row is the middle "
    "of three full runs in the same hour (0.90, 1.02, 0.98 ms; the trivial app "
    "0.25-0.32; in process 0.59-0.63), its write path unchanged since the 1.18 of "
    "the evening before. "
    "On 2026-12-06 "
    "(evening, a faster host: the "
    "trivial app at 0.36 ms) the full run gave SQLite 1.13-1.23 ms and PostgreSQL "
    "1.28-1.52 ms per round. With one connection (one request in flight) a POST "
    "costs 1.29 ms on SQLite and 1.5 on PostgreSQL, against 0.72 and 0.89 in one "
    "process: gunicorn hands each request from its main thread to a pool thread "
    "and the kept-alive connection back through a pipe, about 20 futex calls per "
    "request here as the threads take turns at the GIL. Serving a kept-alive "
    "connection's next request on the same thread (a worker subclass) was tried: "
    "no less CPU under P1's load (1.22-1.33 against 1.24-1.53 ms) and a p99 of "
    "340-560 ms, a thread keeping its connection while others waited; not adopted. "
    "On PostgreSQL the workers' CPU per POST also rises with how much of the two "
    "cores the server takes beside them: 1.09 ms in a run where one worker happened "
    "to serve all 32 connections, 1.3-2.1 ms with both busy.",
    "",
]


#: The frames worth a line in the table (totals: the frame and everything under it).
PROFILE_HIGHLIGHTS = (
    "RequestLog.", "Programmes.record_events", "Programmes._find", "Repository.get",
    "EventEnvelope.content_digest", "GroupCommit.", "SQLiteConnection.commit",
    "Connection.wait (psycopg", "PostgresApplicationRecorder.insert_events",
    "LedgerPostgresRecorder._insert_stored_events", "LedgerSQLiteRecorder._insert_events",
    "Mapper.to_stored_event", "Schema.load", "Schema.dump", "write_access_line",
    "TokenCache.", "json_body", "ConnectionPool._check_connection", "WriteLock.held",
)


def profile_section(kind: str) -> list[str]:
    """bench/profile_p1.py's findings: where a P1 request's wall time goes."""
    profile = read_result(f"p1-profile-{kind}")
    if not profile or not profile.get("top_total"):
        return []
    cpu = profile.get("cpu") or {}
    lines = [f"## Where P1's time goes on {STORE_NAMES[kind]} (py-spy)", "",
             f"`python -m bench.profile_p1 --store {kind}` on {profile['measured_at']}: "
             f"{profile['samples']:,} samples of threads handling a request, both workers, under "
             f"P1's load ({_n((profile.get('load') or {}).get('requests_per_s'))} req/s "
             "with the profiler attached); each worker used "
             f"{cpu.get('worker_cpu_share', '?')} of a core, the machine was "
             f"{cpu.get('machine_busy_share', 0):.0%} busy. Shares of request time (wall clock); "
             f"flame graph: `{profile.get('svg')}`.", "",
             "| share | where |", "|---|---|"]
    for item in [w for w in profile.get("waits") or [] if w["self_pct"] >= 0.5][:3]:
        lines.append(f"| {item['self_pct']:.1f} % | waiting: `{item['function']}` |")
    for item in profile["top_self"][:10]:
        lines.append(f"| {item['self_pct']:.1f} % | own time: `{item['function']}` |")
    for item in profile["top_total"]:
        if item["function"].startswith(PROFILE_HIGHLIGHTS):
            lines.append(f"| {item['total_pct']:.1f} % | in and under: "
                         f"`{item['function']}` |")
    return [*lines, ""]


def hosts_section() -> list[str]:
    """bench/hosts.py's findings: failover, the replica's lag, PostgreSQL's costs."""
    r = read_result("hosts-postgres")
    if not r or "steady" not in r:
        return []
    steady, failover = r["steady"], r.get("failover") or {}
    takeover = failover.get("takeover_s") or {}
    ceiling = r.get("writer_ceiling") or {}
    server = ceiling.get("server") or {}

    def spread(p: dict[str, Any] | None, unit: str) -> str:
        if not p or not p.get("n"):
            return "–"
        return f"p50 {p['p50']:g} {unit}, p99 {p['p99']:g} {unit}, max {p['max']:g} {unit} " \
               f"(n {p['n']})"

    def tps(runs: list[dict[str, Any]]) -> str:
        return " / ".join(f"{run['tps']:,.0f}" if "tps" in run else "error" for run in runs)

    bar_s = r.get("bars", {}).get("takeover_s_max", 5)
    lines = [
        "## Past one host (bench/hosts.py)", "",
        f"`{r.get('reproduce', 'python -m bench.hosts')}` on {r['measured_at']}: a PostgreSQL "
        f"{server.get('server_version', '15')} cluster of its own and a streaming replica of "
        "it on this machine (pg_basebackup -R), `traction serve --no-projections` with "
        f"{r.get('workers', 2)} workers reading from the replica, two `traction projections "
        f"run`; ingest of single-event posts at {r.get('ingest_rate_target')} req/s. Load "
        f"average {r.get('loadavg_start')} at the start and {r.get('loadavg_end')} at the end: "
        "the machine is shared, so these figures are noisy. SCALING.md turns them into a "
        "capacity plan.", "",
        "| what | measured | bar | result |", "|---|---|---|---|"]
    for kind, what in (("sigkill", "runner takeover after SIGKILL of the active runner"),
                       ("connection_lost", "runner takeover after the active runner's lock "
                                           "session is terminated (a lost connection)")):
        part = takeover.get(kind) or {}
        ok = bool(part.get("n")) and part["max"] <= bar_s
        lines.append(f"| {what}, during ingest: until the standby holds the lock and the read "
                     f"models move | {spread(part, 's')} | ≤ {bar_s:g} s | "
                     f"{'**pass**' if ok else '**FAIL**'} |")
    after = r.get("after_failover") or {}
    lines.append(f"| read models after the failovers vs a rebuild (digest), "
                 f"{after.get('events', 0):,} events | "
                 f"{'equal' if after.get('equal') else 'DIFFER'} | equal | "
                 f"{'**pass**' if after.get('equal') else '**FAIL**'} |")
    if failover.get("problems"):
        lines.append(f"| failover problems | {'; '.join(failover['problems'])} | none | "
                     "**FAIL** |")
    lines.append(f"| replication lag: 201 → the event is in the replica's ledger | "
                 f"{spread(steady.get('replication_ms'), 'ms')} | | |")
    lines.append(f"| 201 → a summary read from the replica with ?min_position answers | "
                 f"{spread(steady.get('record_to_replica_read_ms'), 'ms')} | | |")
    cpu = steady["cpu_ms"]
    lines.append(f"| CPU per single-event post: API workers / primary PostgreSQL (every "
                 f"process) | {cpu['api_workers_per_post']:.2f} / "
                 f"{cpu['primary_postgres_per_post']:.2f} ms | | |")
    lines.append(f"| CPU per event: the runner following / the replica replaying | "
                 f"{cpu['runner_per_event']:.2f} / {cpu['replica_postgres_per_event']:.2f} ms "
                 "| | |")
    for kind, what in (("dashboard", "a clinic dashboard"),
                       ("programme_list", "a programme list of 100 summaries"),
                       ("summary", "a programme summary")):
        part = (r.get("replica_reads") or {}).get(kind)
        if part:
            lines.append(f"| CPU per read of {what} from the replica: API workers / replica "
                         f"PostgreSQL | {part['cpu_ms']['api_workers_per_read']:.2f} / "
                         f"{part['cpu_ms']['replica_postgres_per_read']:.2f} ms | | |")
    size = steady.get("bytes_per_event") or {}
    lines.append(f"| bytes per event: the log (events, ledger, indexes) / WAL | "
                 f"{size.get('log', 0):,} / {size.get('wal', 0):,} B | | |")
    if ceiling:
        lines.append("| single-writer ceiling: save-shaped transactions/s under the events "
                     "table's exclusive lock, 1 / 4 / 16 clients (pgbench; "
                     f"synchronous_commit {server.get('synchronous_commit')}, "
                     f"{server.get('wal_sync_method')}) | "
                     f"{tps(ceiling['save_like_with_table_lock'])} | | |")
        lines.append("| the same inserts without the table lock, 1 / 4 / 16 clients | "
                     f"{tps(ceiling['same_inserts_without_lock'])} | | |")
    return [*lines, ""]


def encryption_section() -> list[str]:
    """bench/encryption.py: what sealing personal fields costs a post, and a rebuild."""
    lines: list[str] = []
    for kind in STORE_KINDS:
        result = read_result(f"encryption-{kind}")
        if not result:
            continue
        if not lines:
            lines = ["## Sealing personal fields (bench/encryption.py)", "",
                     "`python -m bench.encryption --store sqlite|postgres`: CPU per request "
                     "with personal fields sealed (AES-256-GCM under each programme's data "
                     "key) and with the same application storing them as posted, each on a "
                     "fresh store, in alternating rounds of the same run (in process, as "
                     "bench/profile_cpu.py). P1's request is a session, with nothing to "
                     "seal; a free text seals one field; a programme start makes, wraps and "
                     "stores a data key (once per programme). Bar (P1): sealed at most "
                     "10 % above. "
                     "P3: the rebuild of a store whose fields are sealed (the projection "
                     "never opens them) against read + decode.", "",
                     "| store | request | ms CPU/req sealed | not sealed | ratio | bar |",
                     "|---|---|---|---|---|---|"]
        for row in result["p1"]:
            lines.append(f"| {STORE_NAMES[kind]} | {row['workload']} | "
                         f"{row['cpu_ms_per_request_sealed']:.3f} | "
                         f"{row['cpu_ms_per_request_unsealed']:.3f} | {row['ratio']:.2f} | "
                         + (f"≤ 1.10: {'pass' if row['passes'] else '**FAIL**'} |"
                            if row["bar"] else "(shown, no bar) |"))
        p3 = result.get("p3")
        if p3:
            lines.append(f"| {STORE_NAMES[kind]} | P3 rebuild, {p3['events']:,} events | "
                         f"{p3['rebuild_events_per_s']:,} events/s | read + decode "
                         f"{p3['baseline_events_per_s']:,} events/s (as the rebuild reads: "
                         f"{p3['lean_baseline_events_per_s']:,}) | {p3['ratio']:.2f} "
                         f"({p3['ratio_to_lean_baseline']:.2f}) | ≥ 0.5: "
                         f"{'pass' if p3['passes'] else '**FAIL**'} |")
    return [*lines, ""] if lines else []


def write() -> None:
    (ROOT / "BENCHMARKS.md").write_text(markdown())
    scaling = ROOT / "SCALING.md"
    if scaling.exists():
        scaling.write_text(capacity.rewrite(scaling.read_text(), read_result("hosts-postgres")))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m bench.report", description=__doc__).parse_args(argv)
    write()
    print((ROOT / "BENCHMARKS.md").read_text())


if __name__ == "__main__":
    main()
