"""Repeated revalidations of projection reads, answered 304 without Flask.

A client that polls a dashboard, a clinic's list of programmes or a summary
sends `If-None-Match` with the ETag it holds, and is mostly told 304 Not
Modified. Each worker remembers the 304s the full application gave
(`Known304`): for which token, path, query and `If-None-Match` value, with
exactly which headers, and for which state of the projection (its marker,
projections/reading.py). When the same request comes again and nothing it
depended on has changed, the same 304 is sent without routing, schemas or
hooks: the answer is the one the application would give, because every input
of that answer is checked to be the same:

- the token is checked in full each time (`access.verify_bearer`: its secret,
  revocation, expiry, its clinic deactivated), within the bound the worker's
  token cache already keeps (access.REFRESH_SECONDS), and it must be the very
  record the application authorized: any change to the tokens and clinics
  (which reloads them) sends the next request through the application again.
  A 304 is remembered for one token only, so it is never given to another
  token, let alone to another clinic's;
- the path, query string and `If-None-Match` value are the same strings;
- the projection's marker is the same (as a worker reads it, at most
  TRACTION_READ_STALENESS old, exactly as a full read would): while it is,
  no read's body, hence no ETag, can have changed. Once it moves (any
  clinic's events move it), the view's own read is made again, with the same
  arguments (`Known304.again`, from the worker's read cache or the store, as
  the full read would): if its body is the same, so is the 304 but for the
  position it reflects (`X-Projection-Position`, shown as the view shows it);
  if not, the application answers (200);
- the store is not known to be down (service/http/availability.py).

Reads that are written to the access log (patient-level data read by an
auditor or a viewer for all clinics, service/http/access.py) are never
remembered: each of them, 304 included, goes through the application and is
recorded. Nor are any reads while a read replica serves them (which copy
answers is decided per read). Programme states and histories, which ask the
store for the programme's version on every read, are not remembered either.

Inside the request log (service/http/request_log.py): a shortcut answer has
its request id, its access line and its metrics like any other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, g, request

from projections.reading import Read
from projections.store import Marker
from service.http.access import TOKENS, TokenCache, bearer_credentials, verify_bearer
from service.http.availability import AVAILABILITY, StoreAvailability
from service.http.problems import Problem
from service.http.request_log import ENV_ROUTE, ENV_TOKEN_ID
from service.storage.directory import TokenRecord

#: How many 304s a worker remembers (the least recently used go first).
KEPT = 4096
#: The longest path + query + If-None-Match remembered (an ETag is 26 characters;
#: a made-up list of them must not fill the memo with large keys).
KEY_CHARS = 600
#: Where create_app keeps the worker's Revalidations.
REVALIDATIONS = "traction.revalidations"
#: Where a view leaves the projection marker its answer holds for.
ENV_VALID_WHILE = "traction.valid_while"
NOT_MODIFIED = "304 NOT MODIFIED"
POSITION = "X-Projection-Position"

Key = tuple[str, str, str, str]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Known304:
    """A 304 the application gave, and what it held for."""

    #: The token record the application authorized (the worker's cached object).
    token: TokenRecord
    #: The projection's marker on the primary when the read was made.
    marker: Marker
    #: The route template, for the access line and the metrics.
    route: str | None
    #: The headers it was sent with (the request log adds the request id).
    headers: tuple[tuple[str, str], ...]
    #: The digest of the body the client holds.
    digest: str
    #: The same read made again, as the view made it (same arguments, same copy).
    again: Callable[[], Read | None]
    #: X-Projection-Position as the view shows a read's position to this token.
    position_shown: Callable[[int], str]

    def at(self, read: Read, marker: Marker) -> Known304:
        """The same 304 for the same body read again under a newer marker: only
        the position it reflects differs."""
        shown = self.position_shown(read.position)
        headers = tuple((name, shown if name == POSITION else value)
                        for name, value in self.headers)
        return replace(self, marker=marker, headers=headers)


@dataclass(frozen=True)
class Remember:
    """What a projection read's view leaves for the middleware (ENV_VALID_WHILE)."""

    token: TokenRecord
    read: Read
    again: Callable[[], Read | None]
    position_shown: Callable[[int], str]


def valid_while(read: Read, *, again: Callable[[], Read | None],
                position_shown: Callable[[int], str], replica_in_use: bool) -> None:
    """Called by a projection read's view: a 304 of `read` may be answered again
    while the primary's projection marker is the one it was read under, or, once
    that moves, while `again()` (the same read, made again) has the same body.
    Not for reads the access log records, nor while a read replica may serve reads."""
    if read.valid_while is None or replica_in_use or g.get("log_access"):
        return
    token = g.get("token")
    if token is not None:
        request.environ[ENV_VALID_WHILE] = Remember(token, read, again, position_shown)


class Revalidations:
    """WSGI middleware: a remembered 304 answered at once, anything else passed on."""

    def __init__(self, wsgi_app: WsgiApp, app: Flask,
                 primary_marker: Callable[[], Marker], kept: int = KEPT) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        #: The primary's projection marker, as reads see it (Reader.primary.marker).
        self.primary_marker = primary_marker
        self.kept = kept
        self._known: OrderedDict[Key, Known304] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return self.wsgi_app(environ, start_response)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not if_none_match or not authorization:
            return self.wsgi_app(environ, start_response)
        credentials = bearer_credentials(authorization)
        if credentials is None:
            return self.wsgi_app(environ, start_response)
        # By token id: the memo never holds a token's secret.
        key = (credentials[0], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
               if_none_match)
        known = self._recall(key)
        if known is not None:
            current = self._still_valid(known, authorization)
            if current is not None:
                if current is not known:
                    self._keep(key, current)
                environ[ENV_ROUTE] = current.route
                environ[ENV_TOKEN_ID] = current.token.token_id
                start_response(NOT_MODIFIED, list(current.headers))
                return []
            self._forget(key)
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, capture)
        held = environ.get(ENV_VALID_WHILE)
        if (held is not None and answered and answered[0].startswith("304")
                and sum(map(len, key)) <= KEY_CHARS):
            remember: Remember = held
            if remember.token.token_id != key[0]:
                return body  # cannot be: the application authorized this header's token
            assert remember.read.valid_while is not None
            self._keep(key, Known304(remember.token, remember.read.valid_while,
                                     environ.get(ENV_ROUTE), tuple(answered[1]),
                                     remember.read.digest, remember.again,
                                     remember.position_shown))
        return body

    def _still_valid(self, known: Known304, authorization: str) -> Known304 | None:
        """The 304 to answer now (`known`, or the same with the position it reflects
        now), if everything it depended on still holds; None: ask the application."""
        availability: StoreAvailability = self.app.extensions[AVAILABILITY]
        if availability.down:
            return None  # the application answers 503 (or probes the store)
        cache: TokenCache = self.app.extensions[TOKENS]
        try:
            token = verify_bearer(cache, authorization)
            if token is not known.token:
                return None  # tokens or clinics reloaded since: ask the application
            marker = self.primary_marker()
            if marker == known.marker:
                return known
            # The projection moved (another clinic's event, perhaps): the same
            # read made again, as the view would make it.
            read = known.again()
        except Problem:
            return None
        except Exception:  # noqa: BLE001 - e.g. the store, a wait: the application answers it
            return None
        if read is None or read.digest != known.digest or read.valid_while is None:
            return None  # changed (the application answers 200), or gone (404)
        return known.at(read, read.valid_while)

    def _recall(self, key: Key) -> Known304 | None:
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
            return known

    def _keep(self, key: Key, known: Known304) -> None:
        with self._lock:
            self._known[key] = known
            self._known.move_to_end(key)
            while len(self._known) > self.kept:
                self._known.popitem(last=False)

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._known.pop(key, None)

    def __len__(self) -> int:
        return len(self._known)
