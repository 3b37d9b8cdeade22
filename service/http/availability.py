"""Fail fast while the store is down.

When PostgreSQL stops answering, each request would otherwise spend about
twelve seconds in the library's connection retries before its 503. After a
store error, this worker answers 503 at once for COOLDOWN_SECONDS; then it
lets exactly one request through as a probe. If the probe reaches the store,
the worker is back in service; if not, the cool-down starts again. Liveness
and metrics (`/healthz`, `/metrics`) and the docs never touch the store and
are never held back.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, current_app, g, request

from service.http.problems import store_unavailable

#: Longer than a failing probe takes (about 2 s: the pools' connection
#: timeouts), so that a worker is still cooling down when the next request
#: comes, even when requests alternate between workers.
COOLDOWN_SECONDS = 3.0
#: Where init_app keeps the worker's StoreAvailability.
AVAILABILITY = "traction.availability"
#: Endpoints that answer without the store.
STORELESS_ENDPOINTS = {"ops.healthz", "metrics.metrics", "static",
                       "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}


class StoreAvailability:
    def __init__(self, cooldown: float = COOLDOWN_SECONDS) -> None:
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._down_until: float | None = None  # None: in service
        self._probing = False

    @property
    def down(self) -> bool:
        return self._down_until is not None

    def admit(self) -> float | None:
        """None if this request may use the store (g.store_probe marks the one
        probe), else the seconds until the next probe."""
        with self._lock:
            if self._down_until is None:
                return None
            now = time.monotonic()
            if self._probing:
                return self.cooldown
            if now < self._down_until:
                return self._down_until - now
            self._probing = True
            g.store_probe = True
            return None

    def failed(self) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.cooldown
            self._probing = False

    def succeeded(self) -> None:
        with self._lock:
            self._down_until = None
            self._probing = False


def report_store_failure() -> None:
    """Called by the problem handler for every store error (create_app wires it)."""
    availability: StoreAvailability | None = current_app.extensions.get(AVAILABILITY)
    if availability is not None:
        availability.failed()
        g.store_failed = True


def _gate() -> None:
    endpoint = request.endpoint
    if endpoint in STORELESS_ENDPOINTS or endpoint is None:
        return
    if request.blueprint == "pages":
        return  # HTML shells: no store
    availability: StoreAvailability = current_app.extensions[AVAILABILITY]
    wait = availability.admit()
    if wait is not None:
        raise store_unavailable(retry_after=max(1, math.ceil(wait)))


def _settle(_exception: BaseException | None) -> None:
    if not g.get("store_probe"):
        return
    if not g.get("store_failed"):
        current_app.extensions[AVAILABILITY].succeeded()
    else:
        current_app.extensions[AVAILABILITY].failed()


def init_app(app: Flask) -> None:
    app.extensions[AVAILABILITY] = StoreAvailability()
    app.before_request(_gate)
    app.teardown_request(_settle)
