"""Prometheus metrics: requests, recorded events, conflicts, replays, projections.

Under gunicorn each worker is its own process, so the metrics use
prometheus_client's multiprocess mode: `traction serve` creates a fresh
directory and exports PROMETHEUS_MULTIPROC_DIR before any worker starts (the
library chooses its mode when it is first imported), every worker writes its
values to memory-mapped files there, and a scrape answered by any worker adds
up all of them. deploy/gunicorn.conf.py drops a dead worker's live gauges.
Without the variable (tests, `flask run`) the metrics live in this process.

Labels never hold ids: requests are counted by route template (the URL rule,
`/v1/clinics/<clinic:clinic_id>/...`), events by type (a listener of
Programmes' receipts), conflicts by the kind of problem the request was
answered with (noted by service/http/problems.py where the problem is made).

Projection position and lag (and a read replica's lag) are read at each
scrape, waiting for the store for at most a second.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from typing import Any

from flask import Flask
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from domain.application import Receipt
from projections.status import all_statuses
from service.bootstrap import Components
from service.http import request_log

#: The classic Prometheus text format, which every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
#: In multiprocess mode the values live in files and a scrape reads them all;
#: otherwise in this process's own registry.
REGISTRY: CollectorRegistry | None = None if MULTIPROC_DIR else CollectorRegistry()
#: Latency buckets around the service's bars (p99 10 ms reads, 50 ms writes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: How long a scrape waits for the projections' status before answering without it.
PROJECTION_STATUS_WAIT = 1.0
#: A metrics file starts with how much of it is used (4 bytes) and padding.
MMAP_HEADER_BYTES = 8
_refreshing = threading.Lock()

log = logging.getLogger(__name__)
# The `_created` series exist only in single-process mode: drop them, so a
# scrape looks the same under `flask run` as under gunicorn.
disable_created_metrics()

http_requests = Counter(
    "traction_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"], registry=REGISTRY,
)
http_latency = Histogram(
    "traction_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
events_recorded = Counter(
    "traction_events_recorded", "Events recorded in the store, by type.", ["type"],
    registry=REGISTRY,
)
idempotent_replays = Counter(
    "traction_idempotent_replays",
    "Posts whose events were all recorded before: answered 200 with the original receipt.",
    registry=REGISTRY,
)
conflicts = Counter(
    "traction_conflicts", "Requests answered 409, by the problem's kind.", ["kind"],
    registry=REGISTRY,
)
# The most recent value from any process wins; a dead worker's are dropped.
projection_position = Gauge(
    "traction_projection_position", "The last global position a projection has processed.",
    ["projection"], multiprocess_mode="livemostrecent", registry=REGISTRY,
)
projection_lag_events = Gauge(
    "traction_projection_lag_events", "Events recorded that a projection has not processed.",
    ["projection"], multiprocess_mode="livemostrecent", registry=REGISTRY,
)
projection_lag_seconds = Gauge(
    "traction_projection_lag_seconds",
    "How long the oldest event a projection has not processed has been waiting.",
    ["projection"], multiprocess_mode="livemostrecent", registry=REGISTRY,
)

replica_reads = Counter(
    "traction_replica_reads",
    "Reads that a read replica could serve, by the copy that served them and, for the "
    "primary, why: down (unreachable), behind (a history newer than its copy), error.",
    ["served_by", "reason"], registry=REGISTRY,
)
replica_up = Gauge(
    "traction_replica_up", "1 while the read replica answers, 0 while it cannot be reached.",
    multiprocess_mode="livemostrecent", registry=REGISTRY,
)
replica_lag_events = Gauge(
    "traction_replica_lag_events", "Events recorded on the primary that the replica lacks.",
    multiprocess_mode="livemostrecent", registry=REGISTRY,
)
replica_lag_seconds = Gauge(
    "traction_replica_lag_seconds",
    "How long ago the oldest event the replica lacks was recorded.",
    multiprocess_mode="livemostrecent", registry=REGISTRY,
)
replica_lag_bytes = Gauge(
    "traction_replica_lag_bytes", "WAL the replica has not replayed yet.",
    multiprocess_mode="livemostrecent", registry=REGISTRY,
)


def set_projection_lag(name: str, position: int | None, lag_events: int | None,
                       lag_seconds: float | None) -> None:
    """Report a projection's position and lag (None: unknown, left as it was)."""
    for gauge, value in ((projection_position, position), (projection_lag_events, lag_events),
                         (projection_lag_seconds, lag_seconds)):
        if value is not None:
            gauge.labels(projection=name).set(value)


#: The request count and latency of each (method, route, status) seen, labelled once:
#: prometheus_client's labels() costs more than the count itself. The keys are
#: the metrics' own label values, so this holds no more than the metrics do.
_request_metrics: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(finished: request_log.FinishedRequest) -> None:
    key = (finished.method, finished.route or "unmatched", finished.status)
    labelled = _request_metrics.get(key)
    if labelled is None:
        labels = {"method": key[0], "route": key[1], "status": str(key[2])}
        labelled = _request_metrics.setdefault(
            key, (http_requests.labels(**labels), http_latency.labels(**labels)))
    labelled[0].inc()
    labelled[1].observe(finished.seconds)
    if finished.status == 409:
        conflicts.labels(kind=finished.problem or "unknown").inc()


#: events_recorded labelled once per event type (as _request_metrics).
_events_recorded: dict[str, Any] = {}


def count_receipt(receipt: Receipt) -> None:
    """Count a post's outcome: the events it recorded, or an idempotent replay.

    A listener of Programmes' receipts: a metric must never fail a post that
    was recorded, so nothing raised here reaches the post."""
    try:
        if receipt.replayed:
            idempotent_replays.inc()
            return
        for item in receipt.recorded:
            counter = _events_recorded.get(item["type"])
            if counter is None:
                counter = _events_recorded.setdefault(item["type"],
                                                      events_recorded.labels(type=item["type"]))
            counter.inc()
    except Exception:
        log.exception("counting a receipt failed")


def read_projection_status(components: Components) -> None:
    """Set the projection gauges from `projections.status` (and the replica's)."""
    for status in all_statuses(components.programmes, components.read_models):
        set_projection_lag(status.name, status.position, status.lag_events, status.lag_seconds)
    if components.replica is not None:
        replica = components.replica.status()
        replica_up.set(0 if replica.state == "unreachable" else 1)
        for gauge, value in ((replica_lag_events, replica.lag_events),
                             (replica_lag_seconds, replica.lag_seconds),
                             (replica_lag_bytes, replica.lag_bytes)):
            if value is not None:
                gauge.set(value)


def count_replica_read(served_by: str, reason: str) -> None:
    """A listener of the replica's routed reads."""
    replica_reads.labels(served_by=served_by, reason=reason or "none").inc()


def refresh_projection_gauges(components: Components) -> None:
    """Refresh the projection gauges, waiting at most PROJECTION_STATUS_WAIT for the store.

    A scrape must answer even while the store does not (that is when the
    metrics matter most): past the wait it goes on with the last values,
    and the refresh, still running, is not started again until it ends.
    """
    if not _refreshing.acquire(blocking=False):
        return

    def refresh() -> None:
        try:
            read_projection_status(components)
        except Exception as error:
            log.warning("projection status unavailable for /metrics: %s", error)
        finally:
            _refreshing.release()

    thread = threading.Thread(target=refresh, name="metrics-projection-status", daemon=True)
    thread.start()
    thread.join(PROJECTION_STATUS_WAIT)


def exposition(components: Components) -> bytes:
    """Every metric in the Prometheus text format, summed over all workers."""
    refresh_projection_gauges(components)
    if REGISTRY is not None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    WrittenFilesCollector(registry, path=MULTIPROC_DIR)
    return generate_latest(registry)


class WrittenFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's multiprocess collector, minus two ways a scrape fails.

    - A worker creates its file, then sizes it: for a moment it is 0 bytes,
      and reading it raises struct.error, which fails the whole scrape (500).
      A worker killed in that moment leaves the empty file for good, and
      every scrape after fails. Such a file holds nothing yet: skip it.
      (prometheus/client_python#1199, unfixed in 0.26.)
    - gunicorn's child_exit deletes a dead worker's live-gauge files, maybe
      between listing the directory and reading them: list it again.
    """

    def __init__(self, registry: CollectorRegistry, path: str) -> None:
        self.directory = path
        super().__init__(registry, path=path)

    def collect(self) -> Any:
        attempts = 3
        while True:
            attempts -= 1
            try:
                return self.merge(self.written_files(), accumulate=True)
            except FileNotFoundError:
                if not attempts:
                    raise

    def written_files(self) -> list[str]:
        files = []
        for name in glob.glob(os.path.join(self.directory, "*.db")):
            try:
                if os.path.getsize(name) >= MMAP_HEADER_BYTES:
                    files.append(name)
            except FileNotFoundError:
                continue  # a dead worker's, just removed
        return files


def init_app(app: Flask, components: Components) -> None:
    if MULTIPROC_DIR and not os.path.isdir(MULTIPROC_DIR):
        raise RuntimeError(f"PROMETHEUS_MULTIPROC_DIR={MULTIPROC_DIR} is not a directory")
    request_log.on_request_finished(app, observe_request)
    components.programmes.receipt_listeners.append(count_receipt)
    if components.replica is not None:
        components.replica.listeners.append(count_replica_read)
