"""What every benchmark shares: paths, stores, servers under gunicorn, results.

Stores are named: `store_url("sqlite", "fresh")` is a file under bench/data/,
`store_url("postgres", "fresh")` the database `traction_bench_fresh` on the
local PostgreSQL (127.0.0.1:5432, user postgres). Servers are real processes
(`traction serve`, or the baseline app under the same gunicorn settings) on a
free port of 127.0.0.1; load comes from wrk in another process (bench/load.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.bootstrap import initialise_store, make_development_store
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"
STORES = DATA / "stores"
LOGS = DATA / "logs"
RESULTS = BENCH / "results"
LUA = BENCH / "lua"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
TRACTION = str(Path(sys.executable).with_name("traction"))

STORE_KINDS = ("sqlite", "postgres")
#: The PostgreSQL server the benchmarks use; databases are named traction_bench_*
#: (BENCH_PG_PREFIX sets another prefix, so two checkouts can bench on one server).
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_PREFIX = os.environ.get("BENCH_PG_PREFIX", "traction_bench_")


# ---- the machine --------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(*paths: Path) -> str:
    """A digest of the source files under paths (to know when cached work is stale)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


# ---- stores ---------------------------------------------------------------


def check_store_kind(kind: str) -> str:
    if kind not in STORE_KINDS:
        raise SystemExit(f"unknown store {kind!r}: use one of {', '.join(STORE_KINDS)}")
    return kind


def sqlite_path(name: str) -> Path:
    return STORES / f"{name}.sqlite"


def store_url(kind: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{sqlite_path(name)}"  # an absolute path: sqlite:////...
    return f"{PG_SERVER}/{PG_PREFIX}{name}"


def pg_admin() -> Any:
    """An autocommit connection to the server's `postgres` database (to create and drop)."""
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


def pg_available() -> bool:
    try:
        with pg_admin() as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def store_exists(kind: str, name: str) -> bool:
    if kind == "sqlite":
        return sqlite_path(name).exists()
    with pg_admin() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                           [PG_PREFIX + name]).fetchone()
        return row is not None


def drop_store(kind: str, name: str) -> None:
    if kind == "sqlite":
        # The file, its WAL and shared memory, and the lock files beside it.
        path = sqlite_path(name)
        for file in path.parent.glob(path.name + "*"):
            if file.name == path.name or file.name[len(path.name)] in "-.":
                file.unlink(missing_ok=True)
        return
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_PREFIX}{name}" WITH (FORCE)')


def fresh_store(kind: str, name: str) -> str:
    """An empty store with the service's tables; returns its URL."""

    drop_store(kind, name)
    if kind == "sqlite":
        STORES.mkdir(parents=True, exist_ok=True)
    else:
        with pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{PG_PREFIX}{name}"')
    url = store_url(kind, name)
    initialise_store(Settings(database_url=url))
    # The benchmarks' stores hold made-up patients: their KEK is kept in the store
    # (a development store), so every part of a benchmark opens it without a key.
    make_development_store(Settings(database_url=url))
    return url


def checkpoint_sqlite(name: str) -> None:
    """Fold the WAL into the main file, so the file alone is the whole store."""
    conn = sqlite3.connect(sqlite_path(name))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def clone_store(kind: str, source: str, target: str) -> str:
    """A copy of a store (to write into without spoiling a cached dataset)."""
    drop_store(kind, target)
    if kind == "sqlite":
        checkpoint_sqlite(source)
        shutil.copyfile(sqlite_path(source), sqlite_path(target))
    else:
        with pg_admin() as conn:
            # A template must have no other sessions: end any left over.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", [PG_PREFIX + source])
            conn.execute(
                f'CREATE DATABASE "{PG_PREFIX}{target}" TEMPLATE "{PG_PREFIX}{source}"')
    return store_url(kind, target)


def register(url: str, clinic_ids: list[str]) -> dict[str, Any]:
    """Register the clinics (if need be) and issue tokens: an admin, and a writer
    and a viewer per clinic (clinic-scoped, so reads are not access-logged)."""
    from service.storage.database import Database
    from service.storage.directory import Directory
    from service.storage.stores import parse_database_url

    database = Database(parse_database_url(url))
    try:
        directory = Directory(database)
        known = {c["clinic_id"] for c in directory.clinics()}
        for clinic_id in clinic_ids:
            if clinic_id not in known:
                directory.add_clinic(clinic_id, "Bench " + clinic_id)
        tokens: dict[str, Any] = {"writers": {}, "viewers": {}}
        tokens["admin"] = directory.issue_token("admin", None, "bench admin")[1]
        for clinic_id in clinic_ids:
            tokens["writers"][clinic_id] = directory.issue_token(
                "writer", clinic_id, "bench writer")[1]
            tokens["viewers"][clinic_id] = directory.issue_token(
                "viewer", clinic_id, "bench viewer")[1]
        return tokens
    finally:
        database.close()


# ---- HTTP -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 30) -> tuple[int, bytes, dict[str, str]]:
    """One request (only ever to 127.0.0.1); returns status, raw body, headers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def serve_options() -> set[str]:
    """The options `traction serve` knows (--no-projections may not exist yet)."""
    done = subprocess.run([TRACTION, "serve", "--help"], capture_output=True, text=True,
                          timeout=60)
    return {word.strip(",") for word in done.stdout.split() if word.startswith("--")}


def traction_has(*command: str) -> bool:
    """Whether `traction <command...> --help` works (a command that may not exist yet)."""
    done = subprocess.run([TRACTION, *command, "--help"], capture_output=True, text=True,
                          timeout=60)
    return done.returncode == 0


def median_rate(runs: list[dict[str, Any]]) -> int:
    """The middle run's events_per_s (the higher middle of an even count)."""
    return sorted(r["events_per_s"] for r in runs)[len(runs) // 2]


class Server:
    """`traction serve` or the baseline app under gunicorn, on a free local port."""

    def __init__(self, kind: str, *, database_url: str | None = None, workers: int = 2,
                 projections: bool = False, env: dict[str, str] | None = None,
                 label: str = "server", root: Path = ROOT) -> None:
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.bind = f"127.0.0.1:{self.port}"
        self.notes: list[str] = []
        run_env = {**os.environ, "TRACTION_LOG_LEVEL": "warning", **(env or {})}
        if root != ROOT:
            # Another checkout's code (bench/ab.py): first on the path, and the
            # working directory, which gunicorn puts before everything else.
            run_env["PYTHONPATH"] = str(root)
        if kind == "traction":
            assert database_url is not None
            run_env["TRACTION_DATABASE_URL"] = database_url
            command = [TRACTION, "serve", "--bind", self.bind, "--workers", str(workers)]
            if not projections:
                if "--no-projections" in serve_options():
                    command.append("--no-projections")
                else:
                    self.notes.append("traction serve has no --no-projections flag yet")
        else:
            # The same gunicorn settings file and worker count as `traction serve`.
            command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
                       "--bind", self.bind, "--workers", str(workers),
                       "bench.baseline_app:create_app()"]
        self.command = command
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{label}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=run_env, cwd=root, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if http("GET", self.base + "/healthz", timeout=2)[0] == 200:
                    self._wait_for_workers(workers)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{kind} server did not start; see {self.log_path}:\n"
                           + self.log_path.read_text()[-3000:])

    def _wait_for_workers(self, workers: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(self.worker_pids()) < workers:
            time.sleep(0.1)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: processes whose parent is a gunicorn master of ours."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        ours = {self.process.pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    changed = True
        return sorted(pid for pid in ours
                      if parents.get(pid) in ours and _is_gunicorn(parents[pid])
                      and _is_gunicorn(pid))

    def rss(self) -> dict[str, Any]:
        """VmRSS and VmHWM (peak) of each worker, in MB."""
        workers = []
        for pid in self.worker_pids():
            status = proc_status(pid)
            workers.append({"pid": pid, "rss_mb": status.get("VmRSS", 0) / 1024,
                            "peak_rss_mb": status.get("VmHWM", 0) / 1024})
        return {"workers": workers,
                "max_rss_mb": round(max((w["rss_mb"] for w in workers), default=0), 1)}

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds each worker has used so far."""
        return cpu_seconds(self.worker_pids())

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_gunicorn(pid: int) -> bool:
    return "gunicorn" in _cmdline(pid)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def proc_status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


# ---- results ------------------------------------------------------------------


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if not ours or not baseline:
        return None
    return round(ours / baseline, 3)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>.json, written atomically (through a .tmp file)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
