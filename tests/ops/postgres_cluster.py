"""A throwaway PostgreSQL cluster that a test can stop and start at will, and
streaming replicas of it.

Never the machine's shared server: a fresh data directory on a free port,
run as the `postgres` OS user (initdb refuses root), removed afterwards. A
replica is a base backup of a running cluster (`pg_basebackup -R`: it starts
as a hot standby that streams from it) on a port of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def unavailable_reason() -> str | None:
    """Why a cluster cannot be made here, or None when it can."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"PostgreSQL server binaries not installed in {PG_BIN}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user to run the cluster as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "running the cluster as the postgres user needs root"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "no runuser to run the cluster as the postgres user"
    return None


def require_clusters() -> None:
    """Skip the test when no cluster can be made here; fail instead where the
    PostgreSQL tests are required (CI sets TRACTION_REQUIRE_POSTGRES=1)."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("TRACTION_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"a PostgreSQL cluster of its own is required here: {reason}")
    pytest.skip(reason)


class PostgresCluster:
    def __init__(self, *, primary: PostgresCluster | None = None) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="traction-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        user = pwd.getpwnam("postgres")
        os.chown(self.root, user.pw_uid, user.pw_gid)
        if primary is None:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        else:
            # -R: standby.signal and primary_conninfo, so it starts streaming from the primary.
            self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                      "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream",
                      "-c", "fast", "--no-sync")

    def replica(self) -> PostgresCluster:
        """A streaming replica of this (running) cluster, not started yet."""
        return PostgresCluster(primary=self)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def sql(self, statement: str) -> list[tuple]:
        """Run one statement as the superuser; its rows."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60, cwd=self.root)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` is a crash: no checkpoint, clients cut off."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
