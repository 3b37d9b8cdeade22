"""Errors as RFC 9457 problem documents (application/problem+json).

The one place that maps domain and application errors, validation failures
and HTTP errors to statuses and problem documents. Nothing reaches the client
as an HTML error page or a bare 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from domain import errors
from domain.versions import EventFromNewerRelease
from service.fhir import outcomes
from service.http.request_log import ENV_PROBLEM
from service.storage.errors import UNREACHABLE
from service.storage.sealing import KeyRotated

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.members = members

    def document(self) -> dict[str, Any]:
        """The problem document (also one line of a bulk answer)."""
        # No "instance" member: a problem never echoes the request's path,
        # so a 404 is byte-identical whether the programme is missing or
        # another clinic's, and no answer repeats another clinic's ids.
        return {
            "type": f"urn:traction-ledger:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.members,
        }

    def response(self) -> Response:
        response = Response(json.dumps(self.document()), status=self.status,
                            mimetype=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


def store_unavailable(retry_after: int,
                      detail: str = "The database cannot be reached right now; retry shortly."
                      ) -> Problem:
    return Problem(503, "store-unavailable", "The event store is unavailable", detail,
                   headers={"Retry-After": str(retry_after)})


def field_errors(messages: Any, pointer: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into JSON-pointer-addressed errors."""
    if isinstance(messages, dict):
        found: list[dict[str, str]] = []
        for key, value in messages.items():
            child = pointer if key == "_schema" else f"{pointer}/{key}"
            found.extend(field_errors(value, child))
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"pointer": pointer or "/", "detail": m} for m in messages]
    if isinstance(messages, list):
        return [e for m in messages for e in field_errors(m, pointer)]
    return [{"pointer": pointer or "/", "detail": str(messages)}]


def validation_problem(messages: Any, strip_prefix: str = "") -> Problem:
    found = field_errors(messages)
    if strip_prefix:
        for error in found:
            if error["pointer"].startswith(strip_prefix):
                error["pointer"] = error["pointer"][len(strip_prefix):] or "/"
    return Problem(
        422,
        "validation-failed",
        "The request does not pass validation",
        in_sentences(found),
        errors=found,
    )


#: How many field errors the detail spells out; `errors` lists them all.
ERRORS_IN_DETAIL = 5


def in_sentences(found: list[dict[str, str]]) -> str:
    """The first field errors as sentences: "/data/pain_nrs: Must be ... 10. /data/..."."""
    sentences = []
    for error in found[:ERRORS_IN_DETAIL]:
        detail = error["detail"].strip()
        if not detail.endswith((".", "?", "!")):
            detail += "."
        sentences.append(f"{error['pointer']}: {detail}")
    more = len(found) - ERRORS_IN_DETAIL
    if more > 0:
        sentences.append(f"And {more} more (see errors).")
    return " ".join(sentences)


def body_too_large(limit: int) -> Problem:
    return Problem(413, "request-entity-too-large", "Request Entity Too Large",
                   f"The body is larger than {limit} bytes, the most this service accepts; "
                   "send fewer events per post.", max_body_bytes=limit)


def problem_for(error: Exception) -> Problem:
    """The problem document for a domain or application error."""
    if isinstance(error, errors.DomainRuleViolation):
        members: dict[str, Any] = {"rule": error.rule}
        if error.event_index is not None:
            members["event_index"] = error.event_index
            members["event_id"] = error.event_id
        return Problem(422, "domain-rule", "A domain rule refuses this event",
                       error.detail, **members)
    if isinstance(error, errors.VersionNotRecorded):
        # Said only of a programme the caller may see (domain/application.py).
        return Problem(404, "version-not-recorded", "No such version of the programme",
                       sentence(error.detail), current_version=error.current_version)
    if isinstance(error, errors.NotYetRecorded):
        return Problem(404, "not-yet-recorded", "The programme was not recorded yet then",
                       sentence(error.detail),
                       first_recorded_at=error.first_recorded_at.isoformat(),
                       current_version=error.current_version)
    if isinstance(error, errors.ProgrammeNotFound):
        return not_found()
    if isinstance(error, errors.VersionConflict):
        return Problem(409, "version-conflict", "expected_version does not match",
                       error.detail, expected_version=error.expected,
                       current_version=error.actual)
    if isinstance(error, errors.EventIdConflict):
        return Problem(409, "event-id-conflict", "event_id already used for other content",
                       error.detail, event_ids=error.event_ids)
    if isinstance(error, EventFromNewerRelease):
        # A rolling upgrade: a host of the newer release can answer; retrying soon
        # reaches one (or this one, upgraded).
        return Problem(503, "newer-release", "Recorded by a newer release",
                       "This programme holds an event recorded by a newer release of the "
                       f"service ({error}); a host running that release can read it.",
                       headers={"Retry-After": "5"})
    if isinstance(error, KeyRotated):
        # Until this worker restarts with the new key, it cannot start a programme.
        return Problem(503, "key-rotated", "The data key was rotated; retry shortly",
                       "The service is switching to a new key-encryption key; retry in a "
                       "moment.", headers={"Retry-After": "5"})
    if isinstance(error, errors.ConcurrentWrite):
        return Problem(409, "concurrent-write", "Concurrent write; safe to retry",
                       error.detail, headers={"Retry-After": "1"})
    raise TypeError(f"no problem mapping for {type(error).__name__}")


def sentence(text: str) -> str:
    """A domain error's detail as a sentence: capitalised, with a full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def not_found() -> Problem:
    # The same body whether the programme does not exist or belongs to
    # another clinic: a 404 must not tell them apart.
    return Problem(404, "not-found", "Not found", "No such resource.")


#: The FHIR routes, whose errors are OperationOutcomes: /v1/fhir/..., a clinic's
#: /fhir and everything under it, and a programme's /fhir.
FHIR_ROUTE = re.compile(r"^/v1/(fhir(/|$)|clinics/[^/]+/(fhir(/|$)|programmes/[^/]+/fhir$))")


def answer(problem: Problem) -> Response:
    """The response for a problem (an OperationOutcome on a FHIR route); its kind
    is noted for the request's metrics."""
    request.environ[ENV_PROBLEM] = problem.slug
    if FHIR_ROUTE.match(request.path):
        response = Response(json.dumps(outcomes.from_problem(problem.document())),
                            status=problem.status, mimetype=outcomes.FHIR_JSON)
        response.headers.update(problem.headers)
        return response
    return problem.response()


def register_problem_handlers(app: Flask, *, on_store_error: Callable[[], None]) -> None:
    """Answer every error as a problem document; `on_store_error` is told of each
    failure to reach the store (service/http/availability.py)."""

    @app.errorhandler(Problem)
    def handle_problem(problem: Problem) -> Response:
        return answer(problem)

    @app.errorhandler(errors.DomainRuleViolation)
    @app.errorhandler(errors.ApplicationError)
    @app.errorhandler(EventFromNewerRelease)
    @app.errorhandler(KeyRotated)
    def handle_domain_error(error: Exception) -> Response:
        return answer(problem_for(error))

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        original = getattr(error, "original_exception", None)
        if isinstance(original, UNREACHABLE):
            # Raised outside the view (an after_request hook writing the
            # access log): Flask hands it over as a 500, but it is a 503.
            return handle_store_unreachable(original)
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        if code == 422 and "messages" in data:
            # webargs (through flask-smorest) failed to load query or body.
            messages = data["messages"]
            if isinstance(messages, dict) and len(messages) == 1:
                # Drop the location ("json", "query") level.
                messages = next(iter(messages.values()))
            return answer(validation_problem(messages))
        if code == 404:
            # No route matched (a programme id that is no UUID, a clinic id that is
            # no slug): the same answer as for a programme that does not exist.
            return answer(not_found())
        if code == 413 and request.max_content_length is not None:
            return answer(body_too_large(request.max_content_length))
        problem = Problem(code, error.name.lower().replace(" ", "-"), error.name,
                          error.description or error.name)
        response = answer(problem)
        if code == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    def handle_store_unreachable(error: Exception) -> Response:
        log.warning("store unavailable: %s", error)
        on_store_error()
        return answer(store_unavailable(retry_after=2))

    for store_error in UNREACHABLE:
        app.register_error_handler(store_error, handle_store_unreachable)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return answer(Problem(500, "internal-error", "Internal server error",
                              "Something went wrong on our side; it has been logged."))
