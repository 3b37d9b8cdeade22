"""Reading projections: programme summaries, clinic dashboards, the network view.

Every read may wait for `?min_position=P` and answers with the header
X-Projection-Position (projections/reading.py). The bodies are stored as
JSON by the projection, and sent as they are, with an ETag: `If-None-Match`
answers 304 (service/http/conditional.py).

For a token of one clinic both positions are the clinic's own count of its
events (service/storage/clinic_positions.py): `min_position` is turned into
the global position of that event before the wait, and the position a read
reflects into the clinic's count at it. Tokens of all clinics (auditors,
network viewers) keep the global log's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from flask import Response, g

from projections.reading import InvalidCursor, ProjectionBehind, Read, TooManyWaits
from service.http import conditional, examples, revalidations
from service.http.access import allow
from service.http.api.context import positions, positions_of, programmes, reader
from service.http.openapi import CONDITIONAL_HEADERS, LedgerBlueprint, problems, revalidated
from service.http.problems import Problem, not_found, validation_problem
from service.http.schemas.dashboards import (
    POSITION_HEADER,
    ClinicDashboardSchema,
    NetworkDashboardSchema,
    ProgrammeListQuerySchema,
    ProgrammeSummaryDetailSchema,
    ProgrammeSummaryPageSchema,
    ProjectionQuerySchema,
)

#: A projection read's headers: the position it reflects, and its ETag.
READ_HEADERS = {**POSITION_HEADER, **CONDITIONAL_HEADERS}

blp = LedgerBlueprint("dashboards", __name__, url_prefix="/v1",
                      description="Programme summaries and dashboards (projections)")


def shown(clinic_id: str | None, position: int) -> int:
    """A global position as the caller is shown it on this route."""
    return position if clinic_id is None else positions().at(clinic_id, position)


def to_wait_for(clinic_id: str | None, min_position: int | None) -> int | None:
    """The global position a `min_position` asks for (`clinic_id`: the caller's
    clinic, whose count it is). A number beyond the clinic's count of its events
    is answered 503 at once: never with an older read, and never by waiting for
    whatever other clinics record next (that wait would tell when they do)."""
    if min_position is None or clinic_id is None:
        return min_position
    if min_position < 1:
        return None  # nothing recorded yet is asked for: every read is as new
    found = positions().global_of(clinic_id, min_position)
    if found is None:
        raise ProjectionBehind(reader().position(), min_position)
    return found


@contextmanager
def _not_older_than_asked(clinic_id: str | None = None,
                          asked: int | None = None) -> Iterator[None]:
    """A read whose copy of the projection has not reached ?min_position within
    the wait is answered 503, never with an older read (positions as the caller
    is shown them)."""
    try:
        yield
    except TooManyWaits:
        raise Problem(
            503, "too-many-waits", "Too many reads are waiting",
            "This token, or this server, already has as many reads waiting for a "
            "min_position as it may; retry shortly.",
            headers={"Retry-After": "1"},
        ) from None
    except ProjectionBehind as behind:
        reached = shown(clinic_id, behind.position)
        raise Problem(
            503, "projection-behind", "The projection has not caught up yet",
            f"The projection has processed position {reached}, not yet "
            f"{behind.wanted if asked is None else asked}; retry shortly.",
            headers={"Retry-After": "1", "X-Projection-Position": str(reached)},
        ) from None


def caller() -> str | None:
    """Whose wait it is, for the bound per token (projections/reading.py, WaitSlots)."""
    token = g.get("token")
    return token.token_id if token is not None else None


def _answer(read: Read, again: Callable[[], Read | None], clinic_id: str | None = None, *,
            patient_data: bool = False) -> Response:
    """The read, or 304; `again` makes the same read again (for a repeated 304,
    service/http/revalidations.py)."""
    known = positions()

    def position_shown(position: int) -> str:
        return str(position if clinic_id is None else known.at(clinic_id, position))

    revalidations.valid_while(read, again=again, position_shown=position_shown,
                              replica_in_use=reader().replica is not None)
    return conditional.answer(read.body, read.digest, patient_data=patient_data, headers={
        "X-Projection-Position": position_shown(read.position)})


@blp.route("/clinics/<clinic:clinic_id>/programmes", methods=["GET"])
@blp.arguments(ProgrammeListQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, ProgrammeSummaryPageSchema, headers=READ_HEADERS,
              example=examples.SUMMARY_PAGE)
@revalidated(blp, **POSITION_HEADER)
@problems(blp, 401, 403, 404, 422, 503)
@allow("writer", "viewer", "auditor", patient_data=True)
def list_programmes(clinic_id: str, limit: int, status: str | None = None,
                    cursor: str | None = None, min_position: int | None = None) -> Any:
    """The clinic's programme summaries, newest first, a page at a time."""
    scope, read_models, who = positions_of(), reader(), caller()
    try:
        with _not_older_than_asked(scope, min_position):
            wanted = to_wait_for(scope, min_position)

            def again() -> Read:
                return read_models.programmes(clinic_id, status=status, cursor=cursor,
                                              limit=limit, min_position=wanted, caller=who,
                                              clinic_positions=scope is not None)

            read = again()
    except InvalidCursor as error:
        raise validation_problem({"cursor": [str(error)]}) from None
    return _answer(read, again, scope, patient_data=True)


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/summary",
           methods=["GET"])
@blp.arguments(ProjectionQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, ProgrammeSummaryDetailSchema, headers=READ_HEADERS,
              example=examples.SUMMARY_DETAIL)
@revalidated(blp, **POSITION_HEADER)
@problems(blp, 401, 403, 404, 422, 503)
@allow("writer", "viewer", "auditor", patient_data=True)
def programme_summary(clinic_id: str, programme_id: UUID,
                      min_position: int | None = None) -> Any:
    """One programme's summary with its pain trajectory."""
    scope, read_models, who = positions_of(), reader(), caller()
    # Where the clinic's programme is stored (another clinic may use the same id).
    stored_id = programmes().stored_ids(clinic_id, [programme_id])[programme_id]
    with _not_older_than_asked(scope, min_position):
        wanted = to_wait_for(scope, min_position)

        def again() -> Read | None:
            return read_models.summary(clinic_id, stored_id, min_position=wanted,
                                       caller=who, clinic_positions=scope is not None)

        read = again()
    if read is None:
        missing = not_found()  # the same body for another clinic's programme
        missing.headers["X-Projection-Position"] = str(shown(scope, reader().position()))
        raise missing
    return _answer(read, again, scope, patient_data=True)


@blp.route("/clinics/<clinic:clinic_id>/dashboard", methods=["GET"])
@blp.arguments(ProjectionQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, ClinicDashboardSchema, headers=READ_HEADERS,
              example=examples.CLINIC_DASHBOARD)
@revalidated(blp, **POSITION_HEADER)
@problems(blp, 401, 403, 404, 422, 503)
@allow("viewer", "auditor")
def clinic_dashboard(clinic_id: str, min_position: int | None = None) -> Any:
    """The clinic's metrics (docs/metrics.md): no patient-level data."""
    scope, read_models, who = positions_of(), reader(), caller()
    with _not_older_than_asked(scope, min_position):
        wanted = to_wait_for(scope, min_position)

        def again() -> Read:
            return read_models.clinic(clinic_id, min_position=wanted, caller=who)

        return _answer(again(), again, scope)


@blp.route("/dashboard", methods=["GET"])
@blp.arguments(ProjectionQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, NetworkDashboardSchema, headers=READ_HEADERS,
              example=examples.NETWORK_DASHBOARD)
@revalidated(blp, **POSITION_HEADER)
@problems(blp, 401, 403, 422, 503)
@allow("viewer", "auditor", "admin", all_clinics=True)
def network_dashboard(min_position: int | None = None) -> Any:
    """Each clinic's metrics and the totals across the network."""
    read_models, who = reader(), caller()

    def again() -> Read:
        return read_models.network(min_position=min_position, caller=who)

    with _not_older_than_asked():
        return _answer(again(), again)
