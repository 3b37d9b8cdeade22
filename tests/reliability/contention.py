"""Many HTTP clients on one programme at once, through gunicorn (R2).

`race_on_one_programme`: every client posts its own sessions with
`expected_version`; a 409 tells it the version it lost to (or, for a
concurrent write, to re-read), and it retries the same event. Nothing may be
lost or doubled and versions run 1, 2, 3, ...

`same_post_in_parallel`: the same body (the same event ids) posted by many
clients released together by a barrier; exactly one is recorded (201), the
others get 200 with a byte-for-byte equal receipt.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests import builders as b
from tests.reliability.live import Answer, Client, LiveServer, Tokens

CLINIC = "clinic-a"


@dataclass
class RaceReport:
    posted: list[str] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    conflicts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _run_in_threads(run: Any, count: int) -> None:
    """run(0) ... run(count - 1), each in its own thread; returns when all have ended."""
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def programme_path(programme_id: uuid.UUID) -> str:
    return f"/v1/clinics/{CLINIC}/programmes/{programme_id}"


def start_programme(server: LiveServer, tokens: Tokens) -> tuple[uuid.UUID, dict[str, Any]]:
    programme_id = uuid.uuid4()
    client = Client(server.port, tokens.writer[CLINIC])
    try:
        answer = client.send("POST", programme_path(programme_id) + "/events", b.started(),
                             deadline=time.monotonic() + 30)
    finally:
        client.close()
    assert answer.status == 201, answer.raw
    return programme_id, answer.body


def _post_with_expected_version(client: Client, programme_id: uuid.UUID, event: dict[str, Any],
                                deadline: float, report: RaceReport,
                                lock: threading.Lock) -> None:
    path = programme_path(programme_id)
    version = client.send("GET", path, deadline=deadline).body["version"]
    while time.monotonic() < deadline:
        answer = client.send("POST", path + "/events",
                             {"events": [event], "expected_version": version},
                             deadline=deadline)
        with lock:
            report.statuses[answer.status] += 1
        if answer.status == 201:
            with lock:
                report.receipts.append(answer.body)
            return
        if answer.status == 409 and answer.body.get("current_version") is not None:
            # Lost the race to another client: retry on top of its version.
            with lock:
                report.conflicts["version-conflict"] += 1
            version = answer.body["current_version"]
            continue
        if answer.status == 409:
            with lock:
                report.conflicts[answer.body.get("type", "?")] += 1
            version = client.send("GET", path, deadline=deadline).body["version"]
            continue
        with lock:
            report.failures.append(f"{answer.status}: {answer.raw[:300]!r}")
        return
    with lock:
        report.failures.append(f"gave up on {event['event_id']}")


def race_on_one_programme(server: LiveServer, tokens: Tokens, *, clients: int = 32,
                          each: int = 4, seconds: float = 120) -> tuple[uuid.UUID, RaceReport]:
    """`clients` threads each post `each` sessions to one programme with expected_version."""
    programme_id, _ = start_programme(server, tokens)
    report = RaceReport()
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        client = Client(server.port, tokens.writer[CLINIC])
        events = [b.session(1 + index / 100 + i / 10_000) for i in range(each)]
        with lock:
            report.posted.extend(e["event_id"] for e in events)
        try:
            barrier.wait()
            for event in events:
                _post_with_expected_version(client, programme_id, event, deadline, report, lock)
        except Exception as error:  # a thread's failure must reach the test
            with lock:
                report.failures.append(repr(error))
        finally:
            client.close()

    _run_in_threads(run, clients)
    return programme_id, report


def same_post_in_parallel(server: LiveServer, tokens: Tokens, path: str, body: dict[str, Any],
                          clients: int = 32) -> list[Answer]:
    """Post `body` from `clients` threads at once; the answers, in thread order."""
    answers: list[Answer | Exception | None] = [None] * clients
    barrier = threading.Barrier(clients)

    def run(index: int) -> None:
        client = Client(server.port, tokens.writer[CLINIC])
        try:
            client.once("GET", "/healthz")  # connect first, so the posts start together
            barrier.wait()
            answers[index] = client.send("POST", path, body, deadline=time.monotonic() + 60)
        except Exception as error:  # reported to the test below
            answers[index] = error
        finally:
            client.close()

    _run_in_threads(run, clients)
    for answer in answers:
        if not isinstance(answer, Answer):
            raise AssertionError(f"a client failed: {answer!r}")
    return answers  # type: ignore[return-value]
