"""Past one host: runner failover, a read replica's lag, and what PostgreSQL costs.

    python -m bench.hosts [--quick]

On a PostgreSQL cluster of its own and a streaming replica of it (made here
as tests/ops/postgres_cluster.py makes them, in temporary directories on
this machine's disk, removed afterwards; needs root or the postgres user),
with `traction serve --no-projections` (2 workers, reading from the
replica: TRACTION_READ_DATABASE_URL) and two `traction projections run`
(one active, one standing by):

1. steady ingest: wrk posts single events at RATE requests/s; over the run,
   the CPU per request of the API workers and of the primary cluster (every
   PostgreSQL process: backends, WAL writer, checkpointer, the WAL sender),
   the replica cluster's CPU per event (its replay), the active runner's CPU
   per event; a probe posts an event every 100 ms and times how long until
   the replica's ledger has it (replication lag) and until a read on the
   replica with ?min_position shows it (record -> dashboard from the replica);
2. reads from the replica: wrk GETs clinic dashboards and programme summaries
   as fast as it can; CPU per read of the API workers and of the replica;
3. failover under the same ingest: the active runner is killed with SIGKILL,
   then the next one's lock session is terminated from the database side (as
   a lost connection would end it), ROUNDS times each: seconds until the
   standby holds the lock and the read models move again; afterwards the
   read models' digest is compared with a rebuild's;
4. the single-writer ceiling: pgbench on the primary with transactions shaped
   like a save (the events table's exclusive lock, the ledger's head, one
   ledger row, one event, NOTIFY, commit) at 1, 4 and 16 clients, and the
   same two inserts without the table lock (what a log without one global
   order could do on the same disk).

Results: bench/results/hosts-postgres.json (BENCHMARKS.md, "Past one host").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    LOGS,
    ROOT,
    Server,
    cpu_seconds,
    http,
    log,
    machine,
    now_iso,
    register,
    write_result,
)
from bench.dataset import CLINICS
from bench.load import require_wrk, run_wrk
from bench.scenario import event_times, get_config, post_event_config, prestart, start_time
from projections.locks import ProjectionLock
from projections.rebuild import rebuild
from service.bootstrap import (
    initialise_store,
    make_development_store,
    open_components,
    open_programmes,
)
from service.config import Settings
from tests.ops.postgres_cluster import PG_BIN, PostgresCluster, unavailable_reason

NAME = "dashboards"
WORKERS = 2
PROBE_EVERY = 0.1
#: Programmes per clinic in the store (the programme lists read have this many).
PROGRAMMES_PER_CLINIC = 100
#: The issue's bound on a standby's takeover.
TAKEOVER_BAR = 5.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)

    return {"p50": at(50), "p90": at(90), "p99": at(99), "max": round(ordered[-1], 2),
            "n": len(ordered)}


def cluster_cpu(cluster: PostgresCluster) -> float:
    """CPU seconds the cluster's processes have used: the postmaster, its live
    children, and (in the postmaster's cutime) the children that have exited."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


class Runner:
    """`traction projections run` in its own process, its stderr in a log file."""

    def __init__(self, url: str, number: int) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"hosts-runner-{number}.log"
        self.log = self.log_path.open("wb")
        env = {**os.environ, "TRACTION_DATABASE_URL": url, "TRACTION_LOG_LEVEL": "warning"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "projections", "run"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=self.log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def standbys(self) -> int:
        """How many times it has said it waits as a standby (queued for the lock)."""
        return self.log_path.read_bytes().count(b"waiting as a standby")

    def standing_by(self, times: int = 1, timeout: float = 30) -> bool:
        """Wait until it has queued for the lock `times` times in all."""
        return wait_for(lambda: self.standbys() >= times, timeout, every=0.05)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def holder_pid(lock: ProjectionLock) -> int | None:
    holder = lock.holder()
    return int(holder.rsplit(" pid ", 1)[1]) if holder and " pid " in holder else None


def wait_for(condition: Any, timeout: float, every: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


class Store:
    """The bench's store on the primary cluster, and what it reads there."""

    def __init__(self, primary: PostgresCluster, replica: PostgresCluster) -> None:
        self.url = primary.url
        self.replica_url = replica.url
        self.primary = psycopg.connect(primary.url, autocommit=True)
        self.replica = psycopg.connect(replica.url, autocommit=True)
        application = open_programmes(Settings(database_url=self.url))
        self.events_table = application.recorder.events_table_name  # type: ignore[attr-defined]
        application.close()

    def head(self, on_replica: bool = False) -> int:
        connection = self.replica if on_replica else self.primary
        row = connection.execute("SELECT position FROM event_ledger ORDER BY position DESC "
                                 "LIMIT 1").fetchone()
        return row[0] if row else 0

    def projected(self) -> int:
        row = self.primary.execute(
            "SELECT t.notification_id FROM projection_versions v JOIN projection_tracking t "
            "ON t.application_name = v.projection || '.v' || v.live_version "
            "WHERE v.projection = %s", [NAME]).fetchone()
        return row[0] if row and row[0] else 0

    def footprint(self) -> tuple[int, int]:
        """(bytes of the log: the events and ledger tables with their indexes, bytes of
        WAL written so far) on the primary."""
        row = self.primary.execute(
            "SELECT pg_total_relation_size(%s) + pg_total_relation_size('event_ledger'), "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
            [self.events_table]).fetchone()
        return int(row[0]), int(row[1])

    def read_model_bytes_per_programme(self) -> int:
        """The live programme summaries' table (with its indexes) per programme."""
        version = self.primary.execute("SELECT live_version FROM projection_versions "
                                       "WHERE projection = %s", [NAME]).fetchone()[0]
        row = self.primary.execute(
            f"SELECT pg_total_relation_size('programme_summaries_v{version}'), count(*) "
            f"FROM programme_summaries_v{version}").fetchone()
        return round(row[0] / row[1]) if row[1] else 0

    def close(self) -> None:
        self.primary.close()
        self.replica.close()


def probe_replication(server: Server, store: Store, programme: dict[str, str], writer: str,
                      viewer: str, times: list[str], stop: threading.Event
                      ) -> dict[str, Any]:
    """Post an event every PROBE_EVERY; time until the replica's ledger has it, and
    until a summary read with ?min_position answers (read models, on the replica)."""
    replicated: list[float] = []
    read_back: list[float] = []
    problems: list[str] = []
    path = f"/v1/clinics/{programme['clinic_id']}/programmes/{programme['programme_id']}"
    number = 0
    while not stop.is_set():
        began = time.monotonic()
        number += 1
        status, raw, _ = http("POST", server.base + path + "/events", {
            "event_id": str(uuid.uuid4()), "type": "PainReported",
            "occurred_at": times[number % len(times)], "recorded_by": "bench.probe",
            "data": {"pain_nrs": number % 11, "context": "follow_up"}}, token=writer)
        acknowledged = time.monotonic()
        if status != 201:
            problems.append(f"probe post answered {status}")
            stop.wait(PROBE_EVERY)
            continue
        position = json.loads(raw)["recorded"][-1]["position"]
        if wait_for(lambda p=position: store.head(on_replica=True) >= p, 10, every=0.001):
            replicated.append((time.monotonic() - acknowledged) * 1000)
        else:
            problems.append(f"position {position} not on the replica within 10 s")
        status, _, _ = http("GET", f"{server.base}{path}/summary?min_position={position}",
                            token=viewer, timeout=15)
        if status == 200:
            read_back.append((time.monotonic() - acknowledged) * 1000)
        else:
            problems.append(f"summary?min_position answered {status}")
        stop.wait(max(0.0, PROBE_EVERY - (time.monotonic() - began)))
    return {"replication_ms": percentiles(replicated),
            "record_to_replica_read_ms": percentiles(read_back), "problems": problems[:20]}


def steady_ingest(server: Server, store: Store, clusters: tuple[PostgresCluster, ...],
                  active: Runner, config: dict[str, Any], seconds: float,
                  probe: dict[str, Any]) -> dict[str, Any]:
    primary, replica = clusters
    head_before, projected_before = store.head(), store.projected()
    size_before, wal_before = store.footprint()
    api_before, runner_before = server.cpu_seconds(), cpu_seconds([active.pid])
    primary_before, replica_before = cluster_cpu(primary), cluster_cpu(replica)
    ingest: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: ingest.update(run_wrk(
        server.base, config, duration=seconds, label="hosts-ingest", connections=8)))
    loader.start()
    stop = threading.Event()
    probed: dict[str, Any] = {}
    prober = threading.Thread(target=lambda: probed.update(probe_replication(
        server, store, stop=stop, **probe)))
    prober.start()
    loader.join(seconds + 90)
    stop.set()
    prober.join(30)
    wait_for(lambda: store.projected() >= store.head(), 30, every=0.05)
    api_after, runner_after = server.cpu_seconds(), cpu_seconds([active.pid])
    primary_after, replica_after = cluster_cpu(primary), cluster_cpu(replica)
    events = store.head() - head_before
    applied = store.projected() - projected_before
    size_after, wal_after = store.footprint()
    posts = ingest["requests"] + probed["replication_ms"]["n"]
    api_cpu = sum(api_after[p] - api_before[p] for p in api_after if p in api_before)
    return {
        "ingest": ingest, "events": events, "posts": posts, **probed,
        "bytes_per_event": {
            "log": round((size_after - size_before) / events) if events else None,
            "wal": round((wal_after - wal_before) / events) if events else None,
        },
        "read_model_bytes_per_programme": store.read_model_bytes_per_programme(),
        "cpu_ms": {
            "api_workers_per_post": round(1000 * api_cpu / posts, 3) if posts else None,
            "primary_postgres_per_post": round(1000 * (primary_after - primary_before)
                                               / posts, 3) if posts else None,
            "replica_postgres_per_event": round(1000 * (replica_after - replica_before)
                                                / events, 3) if events else None,
            "runner_per_event": round(1000 * (runner_after.get(active.pid, 0)
                                              - runner_before.get(active.pid, 0))
                                      / applied, 3) if applied else None,
        },
    }


def replica_reads(server: Server, replica: PostgresCluster,
                  kinds: dict[str, list[tuple[str, str]]], seconds: float) -> dict[str, Any]:
    """Each kind of read in turn, as fast as wrk goes: CPU per read of the API
    workers and of the replica cluster."""
    measured: dict[str, Any] = {}
    for kind, targets in kinds.items():
        config = get_config(targets)
        run_wrk(server.base, config, duration=2, label=f"hosts-{kind}-warmup", connections=8)
        api_before, replica_before = server.cpu_seconds(), cluster_cpu(replica)
        reads = run_wrk(server.base, config, duration=seconds, label=f"hosts-{kind}",
                        connections=8)
        api_after, replica_after = server.cpu_seconds(), cluster_cpu(replica)
        api_cpu = sum(api_after[p] - api_before[p] for p in api_after if p in api_before)
        count = reads["requests"]
        measured[kind] = {"reads": reads, "cpu_ms": {
            "api_workers_per_read": round(1000 * api_cpu / count, 3) if count else None,
            "replica_postgres_per_read": round(1000 * (replica_after - replica_before)
                                               / count, 3) if count else None}}
    return measured


def failovers(server: Server, store: Store, runners: list[Runner], config: dict[str, Any],
              rounds: int) -> dict[str, Any]:
    """Kill (then cut off) the active runner, `rounds` times each, under ingest."""
    lock = ProjectionLock(Settings(database_url=store.url).store, f"runner:{NAME}")
    outcomes: dict[str, list[float]] = {"sigkill": [], "connection_lost": []}
    problems: list[str] = []
    plan = ["sigkill"] * rounds + ["connection_lost"] * rounds
    seconds = 4.0 * len(plan) + 6
    ingest: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: ingest.update(run_wrk(
        server.base, config, duration=seconds, label="hosts-failover", connections=8)))
    loader.start()
    time.sleep(2)
    for number, how in enumerate(plan):
        active_pid = holder_pid(lock)
        active = next((r for r in runners if r.pid == active_pid), None)
        standby = next((r for r in runners if r.pid != active_pid
                        and r.process.poll() is None), None)
        if active is None or standby is None:
            problems.append(f"round {number}: no active ({active_pid}) or no standby")
            break
        queued = active.standbys()
        began = time.monotonic()
        if how == "sigkill":
            active.process.kill()
            active.process.wait()
        else:
            store.primary.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = "
                "'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.classid::bigint = (%s::bigint >> 32) & 4294967295 "
                "AND l.objid::bigint = %s::bigint & 4294967295", (lock.key, lock.key))
        # Taken over: the standby holds the lock, and the read models move after
        # that (not just a last batch of the old runner committing).
        taken = wait_for(lambda s=standby: holder_pid(lock) == s.pid, 30)
        if taken:
            position = store.projected()
            taken = wait_for(lambda p=position: store.projected() > p, 30)
        if not taken:
            problems.append(f"round {number} ({how}): no takeover within 30 s")
            break
        outcomes[how].append(round(time.monotonic() - began, 3))
        if how == "sigkill":
            active.log.close()
            runners.remove(active)
            runners.append(Runner(store.url, 100 + number))
            if not runners[-1].standing_by():
                problems.append(f"round {number}: the new runner never stood by")
                break
        elif not active.standing_by(queued + 1):
            # The runner that lost its lock finds out (heartbeat) and queues again.
            problems.append(f"round {number}: the runner that lost its lock never stood by")
            break
    loader.join(seconds + 90)
    return {"ingest": ingest, "takeover_s": {how: {"runs": values, **percentiles(values)}
                                             for how, values in outcomes.items()},
            "problems": problems}


def digest_equals_rebuild(url: str, store: Store) -> dict[str, Any]:
    wait_for(lambda: store.projected() >= store.head(), 60, every=0.05)
    components = open_components(Settings(database_url=url))
    try:
        live = components.read_models.digest(NAME)
        report = rebuild(components.programmes, components.read_models, components.store,
                         progress=False, grace=0)
        rebuilt = components.read_models.digest(NAME)
    finally:
        components.close()
    return {"events": report.position, "live_digest": live, "rebuilt_digest": rebuilt,
            "equal": live == rebuilt}


SAVE_LIKE = """\
BEGIN;
SET LOCAL lock_timeout = '10s';
LOCK TABLE {events} IN EXCLUSIVE MODE;
SELECT pg_notify('bench_hosts', '');
WITH head AS (
  SELECT COALESCE((SELECT position FROM event_ledger ORDER BY position DESC LIMIT 1), 0) + 1
         AS p, gen_random_uuid() AS id),
ledger AS (
  INSERT INTO event_ledger (position, programme_id, version, event_id, clinic_id, event_type,
                            recorded_at, content_digest, saved_version, chain_hash)
  SELECT p, id, 1, gen_random_uuid(), 'bench', 'SessionCompleted', now(), NULL, 1,
         md5(p::text) FROM head RETURNING position)
INSERT INTO {events} (originator_id, originator_version, topic, state, notification_id)
SELECT id, 1, 'domain.programme:Programme.SessionCompleted',
       convert_to('{{"duration_minutes": 30, "supervised": true}}', 'UTF8'), p FROM head;
COMMIT;
"""

NO_GLOBAL_LOCK = """\
BEGIN;
INSERT INTO bench_unlocked_events (originator_id, originator_version, topic, state)
VALUES (gen_random_uuid(), 1, 'domain.programme:Programme.SessionCompleted',
        convert_to('{"duration_minutes": 30, "supervised": true}', 'UTF8'));
INSERT INTO bench_unlocked_ledger (programme_id, clinic_id, recorded_at, chain_hash)
VALUES (gen_random_uuid(), 'bench', now(), md5(random()::text));
COMMIT;
"""


def pgbench(primary: PostgresCluster, database: str, script: str, clients: int,
            seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script)
    try:
        done = subprocess.run(
            [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(primary.port), "-U",
             "postgres", "-n", "-f", file.name, "-c", str(clients), "-j",
             str(min(clients, 2)), "-T", str(seconds), database],
            capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(file.name)
    tps = re.search(r"tps = ([\d.]+) \(without initial", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if done.returncode != 0 or tps is None:
        return {"clients": clients, "error": (done.stderr or done.stdout)[-500:]}
    return {"clients": clients, "tps": round(float(tps.group(1)), 1),
            "latency_ms": float(latency.group(1)) if latency else None}


def writer_ceiling(primary: PostgresCluster, seconds: int) -> dict[str, Any]:
    with psycopg.connect(primary.url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS bench_ceiling")
        admin.execute("CREATE DATABASE bench_ceiling")
    url = primary.url.rsplit("/", 1)[0] + "/bench_ceiling"
    settings = Settings(database_url=url)
    initialise_store(settings)
    make_development_store(settings)  # made-up patients
    application = open_programmes(settings)
    events = application.recorder.events_table_name  # type: ignore[attr-defined]
    application.close()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE bench_unlocked_events (notification_id bigserial "
                           "PRIMARY KEY, originator_id uuid, originator_version bigint, "
                           "topic text, state bytea)")
        connection.execute("CREATE TABLE bench_unlocked_ledger (entry bigserial PRIMARY KEY, "
                           "programme_id uuid, clinic_id text, recorded_at timestamptz, "
                           "chain_hash text)")
    locked = [pgbench(primary, "bench_ceiling", SAVE_LIKE.format(events=events), clients,
                      seconds)
              for clients in (1, 4, 16)]
    unlocked = [pgbench(primary, "bench_ceiling", NO_GLOBAL_LOCK, clients, seconds)
                for clients in (1, 4, 16)]
    with psycopg.connect(primary.url, autocommit=True) as connection:
        server = {name: connection.execute(f"SHOW {name}").fetchone()[0]
                  for name in ("synchronous_commit", "fsync", "wal_sync_method",
                               "shared_buffers", "server_version")}
    return {"save_like_with_table_lock": locked, "same_inserts_without_lock": unlocked,
            "server": server, "seconds_per_run": seconds}


def run(quick: bool) -> dict[str, Any]:
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"bench.hosts makes its own PostgreSQL clusters: {reason}")
    require_wrk()
    rate = 60 if quick else 100
    seconds = 8 if quick else 20
    rounds = 2 if quick else 5
    result: dict[str, Any] = {
        "benchmark": "past one host: runner failover, replica lag, PostgreSQL's costs",
        "store": "postgres", "measured_at": now_iso(), "machine": machine(),
        "loadavg_start": loadavg(), "mode": "quick" if quick else "full",
        "ingest_rate_target": rate, "workers": WORKERS,
        "reproduce": "python -m bench.hosts" + (" --quick" if quick else ""),
    }
    primary = PostgresCluster()
    replica: PostgresCluster | None = None
    runners: list[Runner] = []
    try:
        primary.start()
        url = primary.url
        initialise_store(Settings(database_url=url))
        make_development_store(Settings(database_url=url))  # made-up patients
        tokens = register(url, CLINICS)
        start = start_time()
        # A clinic of PROGRAMMES_PER_CLINIC programmes, as SCALING.md assumes.
        programmes = prestart(url, CLINICS, PROGRAMMES_PER_CLINIC * len(CLINICS), start)
        replica = primary.replica()
        replica.start()
        store = Store(primary, replica)
        runners = [Runner(url, 1)]
        lock = ProjectionLock(Settings(database_url=url).store, f"runner:{NAME}")
        wait_for(lambda: holder_pid(lock) == runners[0].pid, 30)
        runners.append(Runner(url, 2))
        runners[-1].standing_by()
        with Server("traction", database_url=url, workers=WORKERS, label="hosts",
                    env={"TRACTION_READ_DATABASE_URL": replica.url}) as server:
            wait_for(lambda: store.projected() >= store.head(), 60, every=0.1)
            config = post_event_config(programmes, tokens["writers"], start, rate=rate)
            probe_programme = programmes[0]
            clinic = probe_programme["clinic_id"]
            log(f"hosts: steady ingest at {rate} req/s for {seconds} s")
            result["steady"] = steady_ingest(
                server, store, (primary, replica), runners[0], config, seconds,
                {"programme": probe_programme, "writer": tokens["writers"][clinic],
                 "viewer": tokens["viewers"][clinic], "times": event_times(start)})
            log(f"  {result['steady']['cpu_ms']}; replication "
                f"{result['steady']['replication_ms']}")
            viewers = tokens["viewers"]
            kinds = {
                # What a clinic's dashboard asks each time it refreshes (clinic.js)...
                "dashboard": [(f"/v1/clinics/{c}/dashboard", viewers[c]) for c in CLINICS],
                "programme_list": [(f"/v1/clinics/{c}/programmes?limit=500", viewers[c])
                                   for c in CLINICS],
                # ...and what a clinic system reads back after a post.
                "summary": [(f"/v1/clinics/{p['clinic_id']}/programmes/{p['programme_id']}"
                             "/summary", viewers[p["clinic_id"]]) for p in programmes[:200]],
            }
            log(f"hosts: reads from the replica, {seconds} s of each kind")
            result["replica_reads"] = replica_reads(server, replica, kinds, seconds)
            log(f"  { {k: v['cpu_ms'] for k, v in result['replica_reads'].items()} }")
            log(f"hosts: failover, {rounds} rounds of each kind")
            result["failover"] = failovers(server, store, runners, config, rounds)
            log(f"  {result['failover']['takeover_s']}")
            result["after_failover"] = digest_equals_rebuild(url, store)
            log(f"  read models equal a rebuild: {result['after_failover']['equal']}")
            status, raw, _ = http("GET", server.base + "/readyz")
            result["readyz"] = {"status": status, "body": raw.decode()[:2000]}
        store.close()
        for runner in runners:
            runner.stop()
        runners = []
        log("hosts: the single-writer ceiling (pgbench)")
        result["writer_ceiling"] = writer_ceiling(primary, 5 if quick else 10)
        log(f"  {result['writer_ceiling']['save_like_with_table_lock']}")
    finally:
        for runner in runners:
            runner.stop(signal.SIGKILL)
        if replica is not None:
            replica.destroy()
        primary.destroy()
    takeovers = [v for kind in result.get("failover", {}).get("takeover_s", {}).values()
                 for v in kind["runs"]]
    result["loadavg_end"] = loadavg()
    result["bars"] = {"takeover_s_max": TAKEOVER_BAR}
    result["passes"] = bool(takeovers) and max(takeovers) <= TAKEOVER_BAR and \
        result.get("after_failover", {}).get("equal") is True and \
        not result["failover"]["problems"]
    result["takeover_all_s"] = {"median": round(statistics.median(takeovers), 3)
                                if takeovers else None}
    write_result("hosts-postgres", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hosts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer rounds")
    args = parser.parse_args(argv)
    try:
        result = run(args.quick)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    print(f"hosts: passes {result['passes']}; load average {result['loadavg_start']} -> "
          f"{result['loadavg_end']}")


if __name__ == "__main__":
    main()
