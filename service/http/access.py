"""Who may call what: the one place that checks tokens, roles and tenancy.

Every view declares its access with `@allow(...)` (or `@public`); a
`before_request` hook enforces it before the view or its schemas run:

- no token, a malformed, unknown or revoked one: 401;
- a role the view does not allow: 403;
- a clinic outside the token's scope, or one that is not registered: 404,
  exactly as for a programme that does not exist (views answer 404 the same
  way for another clinic's programme);
- reads of patient-level data by an auditor or an all-clinic viewer are
  written to the access log.

Operations endpoints that show the whole network's activity (`/metrics`, and
the detail of `/readyz`) are for operators: the scrape token
(TRACTION_METRICS_TOKEN, not a ledger token) or a ledger token for all clinics.

A route with no declaration is refused (fail closed), and the R6 test matrix
walks the URL map so such a route fails the suite.

Each worker caches the tokens and clinics and re-reads them when the
directory's version counter changes, checking it at most every
REFRESH_SECONDS: revocation reaches every worker within that time, without a
database round trip on each request.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from domain.vocabulary import STATUSES
from service.http.problems import Problem, not_found
from service.storage.directory import Directory, TokenRecord, parse_token

REFRESH_SECONDS = 0.5
#: Where init_app keeps the worker's TokenCache.
TOKENS = "traction.tokens"
#: Where init_app keeps the scrape token (TRACTION_METRICS_TOKEN; None: not set).
SCRAPE_TOKEN = "traction.scrape_token"
#: Endpoints that flask and flask-smorest register themselves: public.
PUBLIC_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}

log = logging.getLogger(__name__)
UNKNOWN_TOKEN = TokenRecord("", "0" * 64, "", None, "", revoked=True)
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Access:
    roles: tuple[str, ...]
    #: Only tokens whose scope is every clinic (e.g. the network dashboard).
    all_clinics: bool = False
    #: Reads of patient-level data, logged for auditors and all-clinic viewers.
    patient_data: bool = False
    public: bool = False
    #: The scrape token (TRACTION_METRICS_TOKEN) may call it too.
    scrape: bool = False


def allow(*roles: str, all_clinics: bool = False, patient_data: bool = False,
          scrape: bool = False) -> Callable[[View], View]:
    """Declare which roles (and whether the scrape token) may call a view."""

    def declare(view: View) -> View:
        view.__access__ = Access(tuple(roles), all_clinics, patient_data,  # type: ignore[attr-defined]
                                 scrape=scrape)
        return view

    return declare


def public(view: View) -> View:
    """Declare a view that needs no token (operations endpoints)."""
    view.__access__ = Access((), public=True)  # type: ignore[attr-defined]
    return view


def access_of(app: Flask, endpoint: str) -> Access | None:
    if endpoint in PUBLIC_ENDPOINTS:
        return Access((), public=True)
    return getattr(app.view_functions.get(endpoint), "__access__", None)


class TokenCache:
    """A worker's copy of the tokens and registered clinics."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._version = -1
        self._tokens: dict[str, TokenRecord] = {}
        self._clinics: set[str] = set()
        self._deactivated: set[str] = set()
        self._checked = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._checked < REFRESH_SECONDS:
                return
            self._checked = now
            if self.directory.version() != self._version:
                (self._version, self._tokens, self._clinics,
                 self._deactivated) = self.directory.load()

    def expire(self) -> None:
        """Re-read on the next request (this worker just changed the directory)."""
        with self._lock:
            self._checked = 0.0

    def token(self, token_id: str) -> TokenRecord | None:
        self._refresh()
        record = self._tokens.get(token_id)
        if record is None:
            # Issued since the last reload? One indexed lookup, no full reload.
            record = self.directory.token(token_id)
            if record is not None:
                with self._lock:
                    self._tokens.setdefault(token_id, record)
        return record

    def clinic_deactivated(self, clinic_id: str | None) -> bool:
        """Whether the clinic is deactivated (as of this worker's last reload: at most
        REFRESH_SECONDS ago)."""
        self._refresh()
        return clinic_id is not None and clinic_id in self._deactivated

    def clinic_registered(self, clinic_id: str) -> bool:
        self._refresh()
        if clinic_id in self._clinics:
            return True
        if self.directory.clinic_exists(clinic_id):
            with self._lock:
                self._clinics.add(clinic_id)
            return True
        return False


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail,
                   headers={"WWW-Authenticate": 'Bearer realm="traction-ledger"'})


def authenticate(cache: TokenCache) -> TokenRecord:
    return verify_bearer(cache, request.headers.get("Authorization", ""))


def bearer_credentials(header: str) -> tuple[str, str] | None:
    """(token_id, secret) of `Authorization: Bearer <token>`, if well-formed."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return parse_token(credentials.strip())


def verify_bearer(cache: TokenCache, header: str) -> TokenRecord:
    """The token record an `Authorization` header value shows, or 401: the one
    check of a ledger token (service/http/revalidations.py makes it too)."""
    if not header:
        raise unauthorized("Send Authorization: Bearer <token>.")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise unauthorized("The Authorization header must be: Bearer <token>.")
    parsed = parse_token(credentials.strip())
    if parsed is None:
        raise unauthorized("The token is malformed.")
    token_id, secret = parsed
    record = cache.token(token_id)
    # Compare a secret even when the id is unknown, so timing says nothing.
    matches = (record or UNKNOWN_TOKEN).matches(secret)
    if (record is None or not matches or record.revoked
            or record.expired(datetime.now(UTC)) or cache.clinic_deactivated(record.clinic_id)):
        raise unauthorized("The token is not valid (unknown, revoked or expired, or its "
                           "clinic deactivated).")
    return record


def with_article(words: str) -> str:
    """`an auditor`, `a writer`."""
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def forbidden(token: TokenRecord, access: Access) -> Problem:
    """403, naming the roles (and the scope) that may call the endpoint."""
    roles = list(access.roles)
    named = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"
    scope = " for all clinics" if access.all_clinics else ""
    # A role that may, refused for its scope, is a token for one clinic.
    caller = f"{token.role} token" + (" for one clinic" if token.role in roles else "")
    return Problem(403, "forbidden", "Forbidden",
                   f"{with_article(caller).capitalize()} may not call this endpoint: it needs "
                   f"{with_article(named)} token{scope}.",
                   allowed_roles=roles, all_clinics_only=access.all_clinics)


def enforce_access() -> None:
    endpoint = request.endpoint
    if endpoint is None:
        return  # routing fails next: 404 or 405
    access = access_of(current_app, endpoint)
    if access is None:
        log.error("route %s declares no access; refusing it", endpoint)
        raise Problem(403, "forbidden", "Forbidden", "This route is not open to any role.")
    if access.public:
        return
    if access.scrape and is_scrape_token():
        return
    cache: TokenCache = current_app.extensions[TOKENS]
    token = authenticate(cache)
    g.token = token
    if token.role not in access.roles or (access.all_clinics and not token.all_clinics):
        raise forbidden(token, access)
    clinic_id = (request.view_args or {}).get("clinic_id")
    if clinic_id is not None:
        if token.clinic_id is not None and token.clinic_id != clinic_id:
            raise not_found()
        if not cache.clinic_registered(clinic_id):
            raise not_found()
    if access.patient_data and token.all_clinics and token.role in ("auditor", "viewer"):
        g.log_access = True


def is_scrape_token() -> bool:
    """The request carries the scrape token (TRACTION_METRICS_TOKEN), if one is set."""
    expected: str | None = current_app.extensions.get(SCRAPE_TOKEN)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (expected is not None and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), expected.encode()))


def is_operator() -> bool:
    """On a public route: the caller shows the scrape token, or a valid ledger token
    for all clinics (what the network's activity may be shown to). Never raises:
    any other caller is anonymous."""
    if is_scrape_token():
        return True
    if not request.headers.get("Authorization"):
        return False
    try:
        token = authenticate(current_app.extensions[TOKENS])
    except Problem:
        return False
    return token.all_clinics


def record_access(response: Response) -> Response:
    if g.get("log_access"):
        view_args = request.view_args or {}
        cache: TokenCache = current_app.extensions[TOKENS]
        cache.directory.record_access(
            "read", actor(),
            method=request.method,
            route=request.url_rule.rule if request.url_rule else request.path,
            clinic_id=view_args.get("clinic_id"),
            programme_id=str(view_args["programme_id"]) if "programme_id" in view_args else None,
            remote_addr=request.remote_addr,
            detail=f"status {response.status_code}; {recorded_query()}",
        )
    return response


#: The query parameters of the routes that log reads, whose values are recorded
#: when they are plain (a number, a time, a status); nothing else a caller sends
#: is copied into the access log, which every auditor reads: a token pasted
#: into a URL, or patient details in a made-up parameter, must not spread there.
RECORDED_PARAMETERS = ("version", "as_of", "after", "limit", "min_position", "status")
PLAIN_VALUE = re.compile(r"^(?:[0-9]{1,20}|[0-9]{4}-[0-9]{2}-[0-9]{2}[0-9T:.+\- Z]{0,30})$")


def recorded_query() -> str:
    """The request's query as the access log keeps it: the known parameters
    with plain values, the rest named only by how many there were."""
    parts, others = [], 0
    for name, value in request.args.items(multi=True):
        if name not in RECORDED_PARAMETERS and name != "cursor":
            others += 1
        elif not (PLAIN_VALUE.match(value) or (name == "status" and value in STATUSES)):
            parts.append(f"{name}=(not recorded)")
        else:
            parts.append(f"{name}={value}")
    if others:
        parts.append(f"{others} other parameter(s) not recorded")
    return " ".join(parts)


def actor() -> dict[str, Any]:
    """Who is making this request, for the access log."""
    token: TokenRecord | None = g.get("token")
    return {
        "token_id": token.token_id if token else None,
        "token_label": token.label if token else None,
        "role": token.role if token else None,
        "remote_addr": request.remote_addr,
    }


def init_app(app: Flask, directory: Directory, scrape_token: str | None = None) -> None:
    app.extensions[TOKENS] = TokenCache(directory)
    app.extensions[SCRAPE_TOKEN] = scrape_token
    app.before_request(enforce_access)
    app.after_request(record_access)
