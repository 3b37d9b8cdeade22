"""Sustained ingest over real HTTP while gunicorn workers are killed (R1).

Client threads post events to many programmes (single events and batches,
some with `expected_version`), each post retried with the same event ids
until it is answered: a post whose answer was lost with its worker may be
answered 200 (the original receipt) on retry. A killer thread sends SIGKILL
to one worker every ~0.5 s. Everything the clients were told is kept in an
`IngestReport`, for `tests.reliability.invariants` to hold against the store.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests import builders as b
from tests.reliability import invariants
from tests.reliability.live import CONNECTION_ERRORS, Client, LiveServer, Tokens, request
from tests.stores import SCRAPE

#: How long after the end of the run a client keeps retrying its last post.
GRACE_SECONDS = 60.0


@dataclass
class IngestReport:
    #: event ids of every envelope posted (answered or not).
    sent: set[str] = field(default_factory=set)
    #: the body of every 201 and 200 receipt.
    receipts: list[dict[str, Any]] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    #: posts answered with anything but 201/200, or never answered.
    failures: list[str] = field(default_factory=list)
    connection_errors: int = 0
    #: 200 answers to posts whose first attempt had died with its connection.
    replays_after_retry: int = 0
    kills: int = 0
    posts: int = 0
    seconds: float = 0.0

    def merge(self, other: IngestReport) -> None:
        self.sent |= other.sent
        self.receipts += other.receipts
        self.statuses += other.statuses
        self.failures += other.failures
        self.connection_errors += other.connection_errors
        self.replays_after_retry += other.replays_after_retry
        self.posts += other.posts

    @property
    def acknowledged_events(self) -> int:
        return sum(len(r["recorded"]) for r in self.receipts)


@dataclass
class PostedProgramme:
    """A programme as the one client that posts to it knows it."""

    clinic_id: str
    programme_id: uuid.UUID
    version: int = 0
    day: float = 0.0
    paused: bool = False

    @property
    def path(self) -> str:
        return f"/v1/clinics/{self.clinic_id}/programmes/{self.programme_id}/events"


def next_events(programme: PostedProgramme, rng: random.Random) -> list[dict[str, Any]]:
    """1-5 events that the programme accepts in its current state."""
    if programme.version == 0:
        first = [b.started(programme.day)]
        return first + [b.session(programme.day + 0.01 * (i + 1))
                        for i in range(rng.randint(0, 2))]
    events = []
    for _ in range(rng.choice((1, 1, 1, 2, 5))):
        programme.day += 0.01
        if programme.paused:
            events.append(b.resumed(programme.day))
            programme.paused = False
            continue
        kind = rng.random()
        if kind < 0.5:
            events.append(b.session(programme.day))
        elif kind < 0.8:
            events.append(b.pain(rng.randint(0, 10), programme.day))
        elif kind < 0.9:
            events.append(b.missed(programme.day))
        else:
            events.append(b.paused(programme.day))
            programme.paused = True
    return events


def post_until_answered(client: Client, programme: PostedProgramme, body: dict[str, Any],
                        deadline: float, report: IngestReport) -> None:
    """Post, retrying the identical body after connection errors; record the outcome."""
    errors_before = client.connection_errors
    event_ids = [e["event_id"] for e in body["events"]]
    report.sent.update(event_ids)
    report.posts += 1
    try:
        answer = client.send("POST", programme.path, body, deadline=deadline)
    except CONNECTION_ERRORS as error:
        report.failures.append(f"{programme.programme_id}: never answered ({error!r})")
        return
    retried = client.connection_errors > errors_before
    report.statuses[answer.status] += 1
    if answer.status in (200, 201):
        if answer.status == 200 and not retried:
            report.failures.append(f"200 to a first attempt with new event ids: {answer.body}")
        if answer.status == 200:
            report.replays_after_retry += 1
        report.receipts.append(answer.body)
        programme.version = answer.body["version"]
        return
    report.failures.append(f"{answer.status} for {event_ids}: {answer.raw[:300]!r}")
    # Re-read the version, so this programme's next posts can go on.
    state = client.send("GET", programme.path.removesuffix("/events"), deadline=deadline)
    programme.version = state.body["version"] if state.status == 200 else 0


def client_loop(ports: Sequence[int], tokens: Tokens, stop_at: float, seed: int,
                programmes: int, report: IngestReport,
                until: threading.Event | None = None) -> None:
    """Post until `stop_at` (or `until` is set), each post to the next of `ports` in
    turn (several API hosts behind one load balancer)."""
    rng = random.Random(seed)
    clients = {clinic: [Client(port, token) for port in ports]
               for clinic, token in tokens.writer.items()}
    owned = [PostedProgramme(rng.choice(list(clients)), uuid.UUID(int=rng.getrandbits(128)))
             for _ in range(programmes)]
    try:
        for turn in itertools.count():
            if time.monotonic() >= stop_at or (until is not None and until.is_set()):
                break
            programme = rng.choice(owned)
            body: dict[str, Any] = {"events": next_events(programme, rng)}
            if programme.version and rng.random() < 0.3:
                body["expected_version"] = programme.version
            hosts = clients[programme.clinic_id]
            post_until_answered(hosts[turn % len(hosts)], programme, body,
                                stop_at + GRACE_SECONDS, report)
    finally:
        for client in itertools.chain.from_iterable(clients.values()):
            report.connection_errors += client.connection_errors
            client.close()


class WorkerKiller(threading.Thread):
    """SIGKILL one of `victims()` every `interval` seconds (±40 %) until stopped."""

    def __init__(self, victims: Callable[[], list[int]], interval: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__(daemon=True)
        self.victims = victims
        self.interval = interval
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.killed: list[int] = []

    def run(self) -> None:
        while not self.stopped.wait(self.interval * self.rng.uniform(0.6, 1.4)):
            pids = self.victims()
            if not pids:
                continue
            pid = self.rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.killed.append(pid)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def victims_of(server: LiveServer) -> Callable[[], list[int]]:
    """The processes the killer may pick from: the gunicorn workers and the
    projection runner (`traction serve` restarts it, as gunicorn restarts a
    worker; CHECKS_AFTER_CRASHES then compares the read models with a rebuild)."""

    def victims() -> list[int]:
        runner = server.projection_runner_pid()
        return [*server.worker_pids(), *([runner] if runner else [])]

    return victims


def ingest_under_kills(server: LiveServer, tokens: Tokens, *, seconds: float, clients: int,
                       programmes_per_client: int = 8, kill_interval: float | None = 0.5,
                       seed: int = 0, spread_over: Sequence[LiveServer] = (),
                       until: threading.Event | None = None) -> IngestReport:
    """Run `clients` posting threads for `seconds` (or until `until` is set) while
    workers are killed (`server`'s; with `spread_over`, posts go to each of those
    servers in turn)."""
    ports = [s.port for s in spread_over] or [server.port]
    report = IngestReport()
    stop_at = time.monotonic() + seconds
    partial = [IngestReport() for _ in range(clients)]
    threads = [
        threading.Thread(target=client_loop, daemon=True,
                         args=(ports, tokens, stop_at, seed * 1000 + i,
                               programmes_per_client, partial[i], until))
        for i in range(clients)
    ]
    killer = WorkerKiller(victims_of(server), kill_interval, seed) if kill_interval else None
    started = time.monotonic()
    for thread in threads:
        thread.start()
    if killer:
        killer.start()
    (until or threading.Event()).wait(max(0.0, stop_at - time.monotonic()))
    if killer:
        killer.stop()
        report.kills = len(killer.killed)
    for thread in threads:
        thread.join(GRACE_SECONDS + 30)
        if thread.is_alive():
            report.failures.append("a client thread never finished")
    report.seconds = time.monotonic() - started
    for part in partial:
        report.merge(part)
    return report


# ---- after the crashes ----------------------------------------------------------

CheckAfterCrashes = Callable[[str, LiveServer, Tokens, IngestReport], None]


def every_acknowledged_event_stored_once(database_url: str, server: LiveServer,
                                         tokens: Tokens, report: IngestReport) -> None:
    log = invariants.read_stored_log(database_url)
    invariants.check_log_shape(log)
    assert invariants.check_receipts(log, report.receipts) == report.acknowledged_events
    invariants.check_nothing_unsent(log, report.sent)
    # Every post was answered in the end, so the store holds exactly what was acknowledged.
    assert len(log.ledger) == report.acknowledged_events


def integrity_chain_verifies(database_url: str, server: LiveServer, tokens: Tokens,
                             report: IngestReport) -> None:
    answer = request(server.port, "GET", "/v1/audit/verify", token=tokens.auditor)
    assert answer.status == 200, answer.raw
    # This server has no checkpoint key, so `ok` is false (it cannot show the log
    # whole): the chain itself, and the access log's, must hold.
    assert answer.body["failure"] is None, answer.body
    assert answer.body["access_log"]["failure"] is None, answer.body
    assert answer.body["events_checked"] == report.acknowledged_events


def projections_equal_a_rebuild(database_url: str, server: LiveServer, tokens: Tokens,
                                report: IngestReport) -> None:
    """The read models the killed-and-restarted runner built equal a rebuild."""
    from projections.rebuild import rebuild
    from tests.stores import components_at

    deadline = time.monotonic() + 60
    while True:  # the restarted runner catches up with the whole log
        answer = request(server.port, "GET", "/readyz", headers=SCRAPE)
        lags = [p["lag_events"] for p in (answer.body or {}).get("projections", [])]
        if lags and max(lags) == 0:
            break
        assert time.monotonic() < deadline, f"projections never caught up: {answer.raw}"
        time.sleep(0.2)
    components = components_at(database_url)
    try:
        read_models = components.read_models
        live = read_models.digest("dashboards")
        rebuild(components.programmes, read_models, components.store, progress=False, grace=0)
        assert read_models.digest("dashboards") == live, "read models differ from a rebuild"
    finally:
        components.close()


#: Run after the crash loop, with the service back up.
CHECKS_AFTER_CRASHES: list[CheckAfterCrashes] = [
    every_acknowledged_event_stored_once,
    integrity_chain_verifies,
    projections_equal_a_rebuild,
]
