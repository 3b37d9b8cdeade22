"""The WSGI entry point for gunicorn: `service.wsgi:create_app()`.

gunicorn calls the factory in each worker after fork (we never preload),
so every worker opens its own connections to the store.

Building the app needs the store: the library's PostgreSQL recorder reads
its column types from the database when it is made. A worker that gunicorn
starts while PostgreSQL is down (after a crash, a `kill`, or `max_requests`)
would fail to boot, and gunicorn stops the whole server when a worker fails
to boot: every client would then get "connection refused", for good. So a
worker that cannot reach the store at boot starts anyway, answers 503 with
Retry-After (and /healthz 200: the process is fine), and builds the app as
soon as the store answers again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from service.bootstrap import open_components
from service.config import Settings
from service.http import app as application
from service.http.availability import COOLDOWN_SECONDS
from service.http.problems import store_unavailable
from service.storage.errors import UNREACHABLE

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(settings: Settings | None = None) -> WSGIApp:
    """The app, or, while the store cannot be reached, a stand-in that builds it later."""
    settings = settings or Settings.from_env()

    def build() -> Flask:
        return application.create_app(open_components(settings))

    try:
        return build()
    except UNREACHABLE as error:
        log.warning("store unreachable while this worker starts (%s); answering 503 "
                    "until it is back", error)
        return AppAwaitingStore(build)


class AppAwaitingStore:
    """Answers 503 until the app can be built, trying at most every few seconds."""

    def __init__(self, build: Callable[[], Flask], retry_every: float = COOLDOWN_SECONDS
                 ) -> None:
        self.build = build
        self.retry_every = retry_every
        self.app: Flask | None = None
        self._building = threading.Lock()
        self._next_try = time.monotonic() + retry_every

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        app = self.app or self._try_build()
        if app is not None:
            return app(environ, start_response)
        if environ.get("PATH_INFO") == "/healthz":
            return Flask.response_class('{"status": "ok"}\n', mimetype="application/json")(
                environ, start_response)
        wait = max(1, math.ceil(self._next_try - time.monotonic()))
        return store_unavailable(retry_after=wait).response()(environ, start_response)

    def _try_build(self) -> Flask | None:
        """Build the app if it is time to try and no other thread is trying."""
        if time.monotonic() < self._next_try or not self._building.acquire(blocking=False):
            return None
        try:
            if self.app is None:
                self.app = self.build()
                log.warning("store reachable again; this worker serves the app")
        except UNREACHABLE as error:
            log.warning("store still unreachable: %s", error)
            self._next_try = time.monotonic() + self.retry_every
        finally:
            self._building.release()
        return self.app
